-- Per tenant and stream, the latest run's coverage: how stale the stream's rows can be.
with ranked as (
    select
        *,
        row_number() over (
            partition by instance_id, stream order by run_started_at desc
        ) as recency
    from {{ ref('stg_cc__sync_coverage') }}
)

select
    instance_id,
    stream,
    run_started_at,
    tenant_today,
    parents_total,
    read_new,
    read_changed,
    read_live,
    read_sweep,
    unread_new,
    requests,
    records,
    sweep_cursor,
    sweep_done_share,
    sweep_period_days,
    staleness_bound_hours,
    budget_stopped,
    parents_total is not null as is_per_parent
from ranked
where recency = 1
