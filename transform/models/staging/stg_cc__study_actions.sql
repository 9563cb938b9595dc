-- depends_on: {{ ref('stg_cc__studies') }}
-- Study actions (job 27, ActionViewModel), per study.
select
    instance_id,
    id as study_action_id,
    parent_id as study_id,
    {{ cc_text('name') }} as action_name,
    {{ cc_text('status') }} as status,
    {{ cc_text('type') }} as action_type,
    {{ cc_ref_id('category') }} as category_id,
    {{ cc_ref_name('category') }} as category_name,
    {{ cc_ref_id('assignedTo') }} as assigned_to_staff_id,
    {{ cc_ref_id('requestedBy') }} as requested_by_staff_id,
    {{ cc_ref_id('completedBy') }} as completed_by_staff_id,
    {{ cc_text('scheduling', 'schedulingMode') }} as scheduling_mode,
    {{ cc_tstz('scheduling', 'dueDateMin') }} as due_min_at,
    {{ cc_tstz('scheduling', 'dueDateMax') }} as due_max_at,
    {{ cc_tstz('completedOn') }} as completed_at,
    {{ cc_text('comment') }} as comment,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_study_actions_staging', 'studyId') }}) as src
