-- Type 2 history of sites (from snapshot snap_sites): one row per version of a record.
-- valid_from/valid_to bound a version; is_current marks the live one (valid_to is null). A record
-- soft-deleted by a full reload has no current version.
select
    snap.*,
    snap.dbt_valid_from as valid_from,
    snap.dbt_valid_to as valid_to,
    (snap.dbt_valid_to is null) as is_current
from {{ ref('snap_sites') }} as snap
