-- One row per live study milestone: (instance_id, study_milestone_id).
select
    instance_id, study_milestone_id, study_id, milestone_name, category, importance, status,
    assigned_to_staff_id, scheduling_mode, due_at, assigned_at, projected_at, completed_at,
    (completed_at is not null) as is_completed, has_auto_expenditure, comment, loaded_at
from {{ ref('stg_cc__study_milestones') }}
where not is_deleted
