-- One row per live element (procedure): (instance_id, element_id).
select
    instance_id, element_id, element_uid, study_id, element_name, element_type, description,
    initial_category, initial_invoiceability, budget, cost, place_of_service, cpt, mnemonic,
    standard_time_minutes, room_assignment_type, loaded_at
from {{ ref('stg_cc__elements') }}
where not is_deleted
