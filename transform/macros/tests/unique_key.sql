{#- Model-level: the combination of `columns` is unique (the marts' (instance_id, id) keys). -#}
{% test unique_key(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
