-- depends_on: {{ ref('stg_cc__studies') }}
-- Monitor queries (job 23, MonitorQueryPreviewModel), per study.
select
    instance_id,
    id as query_id,
    coalesce(parent_id, {{ cc_ref_id('study') }}) as study_id,
    {{ cc_text('query') }} as query_text,
    {{ cc_text('status', 'queryStatus') }} as query_status,
    {{ cc_text('status', 'displayName') }} as status_display_name,
    {{ cc_bool('status', 'isConsideredOpen') }} as is_open,
    {{ cc_ref_id('reason') }} as reason_id,
    {{ cc_ref_name('reason') }} as reason_name,
    {{ cc_ref_id('monitorVisit') }} as monitor_visit_id,
    {{ cc_ref_id('requestedByStaff') }} as requested_by_staff_id,
    {{ cc_ref_id('assignedToMonitor') }} as assigned_to_monitor_id,
    {{ cc_int('responseCount') }} as response_count,
    {{ cc_tstz('createdOn') }} as created_at,
    {{ cc_tstz('closedOn') }} as closed_at,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_queries_staging', 'studyId') }}) as src
