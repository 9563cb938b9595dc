{#-
  Print the row count of every mart (dbt run-operation cc_mart_row_counts), e.g. at the end of
  `make demo`:  meltano invoke dbt-postgres:mart-counts
-#}
{% macro cc_mart_row_counts() %}
{%- set marts = [] -%}
{%- for node in graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') -%}
    {%- if node.fqn[1] == 'marts' -%}{%- do marts.append(node) -%}{%- endif -%}
{%- endfor -%}
{%- set marts = marts | sort(attribute='name') -%}
{%- set parts = [] -%}
{%- for node in marts -%}
    {%- do parts.append("select '" ~ node.name ~ "' as mart, count(*) as n from " ~ adapter.quote(node.schema) ~ "." ~ adapter.quote(node.alias or node.name)) -%}
{%- endfor -%}
{%- set result = run_query(parts | join(' union all ') ~ ' order by 1') -%}
{%- do print('Mart row counts (schema ' ~ target.schema ~ '):') -%}
{%- for row in result.rows -%}
    {%- do print('  ' ~ (row[0] ~ ' ').ljust(34, '.') ~ ' ' ~ row[1]) -%}
{%- endfor -%}
{% endmacro %}
