-- depends_on: {{ ref('stg_cc__studies') }}
-- withdrawals (job plan, per study). The endpoint answers 404 on real Clinical Conductor tenants and the
-- spec has no model for it: the table may be missing or empty. Only keys are typed; the rest
-- stays in `data`. Not used by any mart.
select
    instance_id,
    id as withdrawal_id,
    coalesce(parent_id, {{ cc_ref_id('study') }}) as study_id,
    coalesce({{ cc_ref_id('subject') }}, {{ cc_int('subjectId') }}) as subject_id,
    data,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_withdrawals_staging', 'studyId') }}) as src
