-- Providers (ProviderModel): physicians and practices patients are referred by.
select
    instance_id,
    id as provider_id,
    {{ cc_text('providerName') }} as provider_name,
    {{ cc_text('title') }} as title,
    {{ cc_text('firstName') }} as first_name,
    {{ cc_text('lastName') }} as last_name,
    {{ cc_bool('business') }} as is_business,
    {{ cc_ref_id('providerType') }} as provider_type_id,
    {{ cc_ref_name('providerType') }} as provider_type_name,
    {{ cc_text('city') }} as city,
    {{ cc_text('state') }} as state,
    {{ cc_text('country') }} as country,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_providers_staging') }}) as src
