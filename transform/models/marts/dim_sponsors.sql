-- One row per live sponsor: (instance_id, sponsor_id).
select
    instance_id, sponsor_id, sponsor_name, url, primary_email, primary_phone, division_count,
    loaded_at
from {{ ref('stg_cc__sponsors') }}
where not is_deleted
