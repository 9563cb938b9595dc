-- depends_on: {{ ref('stg_cc__studies') }}
-- concomitant_medications (job plan, per study). The endpoint answers 404 on real Clinical Conductor tenants and the
-- spec has no model for it: the table may be missing or empty. Only keys are typed; the rest
-- stays in `data`. Not used by any mart.
select
    instance_id,
    id as concomitant_medication_id,
    coalesce(parent_id, {{ cc_ref_id('study') }}) as study_id,
    coalesce({{ cc_ref_id('subject') }}, {{ cc_int('subjectId') }}) as subject_id,
    data,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_concomitant_medications_staging', 'studyId') }}) as src
