-- Sponsors (SponsorViewModel).
select
    instance_id,
    id as sponsor_id,
    {{ cc_text('name') }} as sponsor_name,
    {{ cc_text('url') }} as url,
    {{ cc_text('primaryEmail') }} as primary_email,
    {{ cc_text('primaryPhone') }} as primary_phone,
    {{ cc_array_length('sponsorDivisions') }} as division_count,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_sponsors_staging') }}) as src
