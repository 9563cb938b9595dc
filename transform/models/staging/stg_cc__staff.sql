-- Staff (job 26, StaffViewModel).
select
    instance_id,
    id as staff_id,
    {{ cc_text('uid') }} as staff_uid,
    {{ cc_text('displayName') }} as display_name,
    {{ cc_text('firstName') }} as first_name,
    {{ cc_text('lastName') }} as last_name,
    {{ cc_text('login') }} as login,
    {{ cc_text('email') }} as email,
    {{ cc_text('profession') }} as profession,
    {{ cc_bool('isStatusActive') }} as is_active,
    {{ cc_bool('isStaffExternal') }} as is_external,
    {{ cc_array_length('staffRoles') }} as role_count,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_staff_staging') }}) as src
