-- Elements (job 8, ElementViewModel): the procedures a study's visits are made of.
select
    instance_id,
    id as element_id,
    {{ cc_text('uid') }} as element_uid,
    {{ cc_ref_id('study') }} as study_id,
    {{ cc_text('name') }} as element_name,
    {{ cc_text('type') }} as element_type,
    {{ cc_text('description') }} as description,
    {{ cc_text('initialCategory') }} as initial_category,
    {{ cc_text('initialInvoiceability') }} as initial_invoiceability,
    {{ cc_num('budget') }} as budget,
    {{ cc_num('cost') }} as cost,
    {{ cc_text('placeOfService') }} as place_of_service,
    {{ cc_text('cpt') }} as cpt,
    {{ cc_text('mnemonic') }} as mnemonic,
    {{ cc_int('standardTimeMinutes') }} as standard_time_minutes,
    {{ cc_text('roomAssignment', 'type') }} as room_assignment_type,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_elements_staging') }}) as src
