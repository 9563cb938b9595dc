-- depends_on: {{ ref('stg_cc__studies') }}
-- Study milestones (job 28, StudyMilestoneViewModel), per study.
select
    instance_id,
    id as study_milestone_id,
    parent_id as study_id,
    {{ cc_text('name') }} as milestone_name,
    {{ cc_text('category') }} as category,
    {{ cc_text('importance') }} as importance,
    {{ cc_text('status') }} as status,
    {{ cc_ref_id('assignedTo') }} as assigned_to_staff_id,
    {{ cc_text('scheduling', 'schedulingMode') }} as scheduling_mode,
    {{ cc_tstz('scheduling', 'dueDate') }} as due_at,
    {{ cc_tstz('assignedOn') }} as assigned_at,
    {{ cc_tstz('projectedDate') }} as projected_at,
    {{ cc_tstz('completedOn') }} as completed_at,
    {{ cc_bool('hasAutoExpenditure') }} as has_auto_expenditure,
    {{ cc_text('comment') }} as comment,
    {{ cc_meta_columns() }}
from ({{ cc_source('fact_study_milestones_staging', 'studyId') }}) as src
