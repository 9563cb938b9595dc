-- Sites (job 1, SiteModel). No change timestamp in the model.
select
    instance_id,
    id as site_id,
    {{ cc_text('uid') }} as site_uid,
    {{ cc_text('name') }} as site_name,
    {{ cc_text('alternateName') }} as alternate_name,
    {{ cc_bool('active') }} as is_active,
    {{ cc_text('city') }} as city,
    {{ cc_text('state') }} as state,
    {{ cc_text('country') }} as country,
    {{ cc_text('zip') }} as zip,
    {{ cc_text('timeZone') }} as time_zone,
    {{ cc_bool('observesDST') }} as observes_dst,
    {{ cc_text('organization') }} as organization_name,
    {{ cc_tstz('createdOn') }} as created_at,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_sites_staging') }}) as src
