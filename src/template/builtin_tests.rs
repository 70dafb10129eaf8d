//! The SQL of the common built-in generic tests (`unique`, `not_null`, `accepted_values`,
//! `relationships`), written in one place. The test macros in `builtin_macros.sql` call it
//! through `__strata_test_sql`; the compile phase calls it directly for tests it writes without
//! the template engine. Both paths give the same text because there is only this one.

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};

use crate::relation::string_literal;

/// `unique`: the values of `column` that appear more than once.
pub fn unique(model: &str, column: &str) -> String {
    format!(
        "\nselect\n    {column} as unique_field,\n    count(*) as n_records\nfrom {model}\nwhere {column} is not null\ngroup by {column}\nhaving count(*) > 1\n"
    )
}

/// `not_null`: the rows where `column` is NULL.
pub fn not_null(model: &str, column: &str) -> String {
    format!("\nselect {column}\nfrom {model}\nwhere {column} is null\n")
}

/// `accepted_values`: the values of `column` outside `listed` (each already written as SQL).
pub fn accepted_values(model: &str, column: &str, listed: &[String]) -> String {
    format!(
        "\nwith all_values as (\n    select {column} as value_field, count(*) as n_records\n    from {model}\n    group by {column}\n)\nselect *\nfrom all_values\nwhere value_field not in ({})\n",
        listed.join(", ")
    )
}

/// `relationships`: the values of `column` with no row in `to` whose `field` holds them.
pub fn relationships(model: &str, column: &str, to: &str, field: &str) -> String {
    format!(
        "\nwith child as (\n    select {column} as from_field\n    from {model}\n    where {column} is not null\n),\nparent as (\n    select {field} as to_field\n    from {to}\n)\nselect from_field\nfrom child\nleft join parent on child.from_field = parent.to_field\nwhere parent.to_field is null\n"
    )
}

/// One of `accepted_values`' values as the test lists it: quoted as a string literal, or as
/// the value prints.
pub fn listed_value(value: &Value, quote: bool) -> String {
    if quote {
        string_literal(&value.to_string())
    } else {
        value.to_string()
    }
}

/// `__strata_test_sql(name, model, column_name, values=…, quote=…, to=…, field=…)`: the SQL of
/// built-in test `name`, for the test macros.
pub fn function(
    name: String,
    model: Value,
    column_name: Value,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let model = model.to_string();
    let column = column_name.to_string();
    let sql = match name.as_str() {
        "unique" => unique(&model, &column),
        "not_null" => not_null(&model, &column),
        "accepted_values" => {
            let values: Value = kwargs.get("values")?;
            let quote: Option<bool> = kwargs.get("quote")?;
            let quote = quote.unwrap_or(true);
            let listed = values
                .try_iter()?
                .map(|value| listed_value(&value, quote))
                .collect::<Vec<_>>();
            accepted_values(&model, &column, &listed)
        }
        "relationships" => {
            let to: Value = kwargs.get("to")?;
            let field: Value = kwargs.get("field")?;
            relationships(&model, &column, &to.to_string(), &field.to_string())
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`{other}` is not a test strata writes natively"),
            ))
        }
    };
    kwargs.assert_all_used()?;
    Ok(sql)
}
