{#-
  Column-level: the column holds only the values the API documents for this enum (dbt's
  accepted_values), at the severity cc_enum_severity() gives. A test of its own because dbt does
  not call project macros in a .yml test config.
-#}
{% test api_enum_values(model, column_name, values) %}
{{ config(severity=cc_enum_severity()) }}
{{ adapter.dispatch('test_accepted_values', 'dbt')(model, column_name, values) }}
{% endtest %}
