{#-
  Severity of the tests on the API's enums (api_enum_values): var enum_test_severity, else env
  CC_ENUM_TEST_SEVERITY (the Meltano setting enum_test_severity), else 'error'. `warn` keeps a
  build green when a newer CC build adds a value.
-#}
{% macro cc_enum_severity() -%}
{{ return(var('enum_test_severity', '') or env_var('CC_ENUM_TEST_SEVERITY', '') or 'error') }}
{%- endmacro %}
