-- Subject status history (SubjectStatusModel). The model has no id: the tap's id is a synthetic
-- text key (subject, status, event date).
select
    instance_id,
    id as subject_status_id,
    {{ cc_ref_id('subject') }} as subject_id,
    {{ cc_ref_id('study') }} as study_id,
    {{ cc_ref_id('site') }} as site_id,
    {{ cc_text('status') }} as status,
    {{ cc_bool('isCurrentStatus') }} as is_current_status,
    {{ cc_tstz('eventDate') }} as event_at,
    {{ cc_text('comment') }} as comment,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_subject_statuses_staging', id_type='text') }}) as src
