-- One row per live protocol visit (template): (instance_id, visit_id).
select
    instance_id, visit_id, visit_uid, study_id, protocol_version_id, visit_name, visit_type,
    reference, description, budget, cost, patient_stipend, caregiver_stipend, is_active,
    auto_repeat, repeat_on_demand, arm_count, loaded_at
from {{ ref('stg_cc__visits') }}
where not is_deleted
