-- One row per live provider: (instance_id, provider_id).
select
    instance_id, provider_id, provider_name, title, first_name, last_name, is_business,
    provider_type_id, provider_type_name, city, state, country, loaded_at
from {{ ref('stg_cc__providers') }}
where not is_deleted
