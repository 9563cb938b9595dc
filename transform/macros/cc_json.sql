{#-
  Typed accessors for the untouched API object in `data` (jsonb). Each takes the path as
  positional arguments: cc_text('name'), cc_text('sponsor', 'name').
-#}

{% macro cc_path(parts) -%}
'{ {{- parts | join(',') -}} }'
{%- endmacro %}

{% macro cc_text() -%}
(data #>> {{ cc_path(varargs) }})
{%- endmacro %}

{% macro cc_int() -%}
(nullif(data #>> {{ cc_path(varargs) }}, '')::bigint)
{%- endmacro %}

{% macro cc_num() -%}
(nullif(data #>> {{ cc_path(varargs) }}, '')::numeric)
{%- endmacro %}

{% macro cc_bool() -%}
(nullif(data #>> {{ cc_path(varargs) }}, '')::boolean)
{%- endmacro %}

{% macro cc_tstz() -%}
{{ cc_ts('(data #>> ' ~ cc_path(varargs) ~ ')') }}
{%- endmacro %}

{#-
  Id of a nested reference. Preview models disagree on casing (StudyPreviewModel has `id`,
  SubjectPreviewModel and StudyArmPreviewModel have `Id`): accept both.
-#}
{% macro cc_ref_id() -%}
(nullif(coalesce(data #>> {{ cc_path(varargs + ('id',)) }}, data #>> {{ cc_path(varargs + ('Id',)) }}), '')::bigint)
{%- endmacro %}

{% macro cc_ref_name() -%}
coalesce(data #>> {{ cc_path(varargs + ('name',)) }}, data #>> {{ cc_path(varargs + ('Name',)) }})
{%- endmacro %}

{% macro cc_array_length() -%}
(case when jsonb_typeof(data #> {{ cc_path(varargs) }}) = 'array'
      then jsonb_array_length(data #> {{ cc_path(varargs) }}) else 0 end)
{%- endmacro %}
