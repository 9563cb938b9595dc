-- One row per live monitor query: (instance_id, query_id).
select
    instance_id, query_id, study_id, query_text, query_status, status_display_name, is_open,
    reason_id, reason_name, monitor_visit_id, requested_by_staff_id, assigned_to_monitor_id,
    response_count, created_at, closed_at,
    round(extract(epoch from (closed_at - created_at)) / 86400.0, 2) as days_open,
    loaded_at
from {{ ref('stg_cc__queries') }}
where not is_deleted
