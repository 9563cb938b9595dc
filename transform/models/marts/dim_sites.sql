-- One row per live site: (instance_id, site_id).
select
    instance_id, site_id, site_uid, site_name, alternate_name, is_active,
    city, state, country, zip, time_zone, observes_dst, organization_name,
    created_at, loaded_at
from {{ ref('stg_cc__sites') }}
where not is_deleted
