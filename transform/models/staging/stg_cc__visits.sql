-- depends_on: {{ ref('stg_cc__studies') }}
-- Visits (job 11, VisitViewModel): the protocol's visit templates, per study.
select
    instance_id,
    id as visit_id,
    {{ cc_text('uid') }} as visit_uid,
    coalesce(parent_id, {{ cc_ref_id('study') }}) as study_id,
    {{ cc_ref_id('protocolVersion') }} as protocol_version_id,
    {{ cc_text('name') }} as visit_name,
    {{ cc_text('type') }} as visit_type,
    {{ cc_text('reference') }} as reference,
    {{ cc_text('description') }} as description,
    {{ cc_num('budget') }} as budget,
    {{ cc_num('cost') }} as cost,
    {{ cc_num('patientStipend') }} as patient_stipend,
    {{ cc_num('caregiverStipend') }} as caregiver_stipend,
    {{ cc_bool('isActive') }} as is_active,
    {{ cc_bool('autoRepeat') }} as auto_repeat,
    {{ cc_bool('repeatOnDemand') }} as repeat_on_demand,
    {{ cc_array_length('arms') }} as arm_count,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_visits_staging', 'studyId') }}) as src
