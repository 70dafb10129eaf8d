//! Generates a deterministic, layered dbt-style project for benchmarks.
//!
//! `cargo run --release --example gen_project -- --models 10000 --out bench-out/10000`
//!
//! The project has four model layers (staging 40%, cleaned 30%, gold 20%, aggregates 10%), each model
//! referring only to models of the layer before it, so the graph can never hold a cycle. Models use
//! what real projects lean on: seeds, `ref`, `var`, `config`, project macros, `{% for %}` loops and
//! incremental models, so parsing and compiling it exercises the template engine rather than file I/O
//! alone. The SQL runs on DuckDB and PostgreSQL and every generated data test passes when built.
//!
//! This file owns only the shape of the generated project. It must stay std-only (examples are built
//! alongside benchmarks) and byte-for-byte deterministic: the same arguments give the same files, so
//! benchmark figures from different commits measure the same work.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
Generate a deterministic layered dbt-style project for benchmarks.

Usage: gen_project --models N --out DIR [--seed S] [--force]

Options:
  --models N   number of models to generate, at least 4 (one per layer)
  --out DIR    directory to write the project into; created if missing
  --seed S     seed for the pseudo-random choices [default: 42]
  --force      delete DIR first if it exists and is not empty
  -h, --help   print this help";

/// Models per `part_NNN` folder: large projects keep their models in many folders, and one huge
/// folder would make directory listing, not parsing, the thing we measure.
const MODELS_PER_FOLDER: usize = 200;

/// Rows of `country_codes.csv`. No code reads as a null or a boolean to a CSV type sniffer
/// (`NA`, `NO`, `ON`), so every tool loads the seed as text.
const COUNTRIES: [(&str, &str); 20] = [
    ("AT", "Austria"),
    ("BE", "Belgium"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("DE", "Germany"),
    ("DK", "Denmark"),
    ("ES", "Spain"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("IE", "Ireland"),
    ("IT", "Italy"),
    ("JP", "Japan"),
    ("MX", "Mexico"),
    ("NL", "Netherlands"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("SE", "Sweden"),
    ("US", "United States"),
];

const PAYMENT_METHODS: &str = "\
method_id,name,fee_cents
1,card,30
2,bank_transfer,0
3,paypal,45
4,apple_pay,25
5,gift_card,10
6,invoice,99
";

const CURRENCIES: &str = "\
currency_code,name,minor_units
EUR,Euro,2
USD,US Dollar,2
GBP,Pound Sterling,2
JPY,Yen,0
CHF,Swiss Franc,2
SEK,Swedish Krona,2
DKK,Danish Krone,2
PLN,Zloty,2
BRL,Brazilian Real,2
MXN,Mexican Peso,2
";

const MACRO_CENTS_TO_DOLLARS: &str = "\
{% macro cents_to_dollars(column, scale=100) -%}
    ({{ column }} / {{ scale }})::numeric(16, 2)
{%- endmacro %}
";

const MACRO_SAFE_DIVIDE: &str = "\
{% macro safe_divide(a, b) -%}
    case when {{ b }} = 0 then null else {{ a }} / {{ b }} end
{%- endmacro %}
";

const MACRO_COLUMN_LIST: &str = "\
{#- Renders `alias.a, alias.b, ...` so models need not repeat long column lists. -#}
{% macro column_list(columns, relation_alias=none) -%}
    {%- for column in columns -%}
        {%- if relation_alias %}{{ relation_alias }}.{% endif %}{{ column }}{% if not loop.last %}, {% endif %}
    {%- endfor -%}
{%- endmacro %}
";

const PROJECT_YML: &str = r#"name: gen
version: "1.0"
model-paths: ["models"]
seed-paths: ["seeds"]
macro-paths: ["macros"]
vars:
  start_date: "2024-01-01"
  amount_scale: 100
models:
  gen:
    staging:
      +materialized: view
      +tags: ["staging"]
    cleaned:
      +materialized: table
      +tags: ["cleaned"]
    gold:
      +materialized: table
      +tags: ["gold"]
    aggregates:
      +materialized: table
      +tags: ["aggregates"]
"#;

/// Why generation stopped: the caller's mistake (exit 2, like any bad argument) or the file system.
#[derive(Debug)]
enum Failure {
    Usage(String),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Io(error)
    }
}

/// What the command line asked for, already checked.
#[derive(Debug, PartialEq)]
struct Settings {
    models: usize,
    out: PathBuf,
    seed: u64,
    force: bool,
}

#[derive(Debug, PartialEq)]
enum Command {
    Help,
    Generate(Settings),
}

fn main() -> ExitCode {
    let settings = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Generate(settings)) => settings,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generate(&settings) {
        Ok(counts) => {
            eprintln!(
                "wrote {} models ({} staging, {} cleaned, {} gold, {} aggregates) to `{}`",
                settings.models,
                counts[0],
                counts[1],
                counts[2],
                counts[3],
                settings.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Io(error)) => {
            eprintln!("error: cannot write `{}`: {error}", settings.out.display());
            ExitCode::FAILURE
        }
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut models = None;
    let mut out = None;
    let mut seed = 42;
    let mut force = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`, as clap-based tools do.
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--models" => {
                let raw = value("--models")?;
                let count: usize = raw
                    .parse()
                    .map_err(|_| format!("`--models` must be a whole number, got `{raw}`"))?;
                if count < Layer::ALL.len() {
                    return Err(format!(
                        "`--models` must be at least {} (one model per layer), got {count}",
                        Layer::ALL.len()
                    ));
                }
                models = Some(count);
            }
            "--out" => {
                let raw = value("--out")?;
                if raw.is_empty() {
                    return Err("`--out` must not be empty".to_owned());
                }
                out = Some(PathBuf::from(raw));
            }
            "--seed" => {
                let raw = value("--seed")?;
                seed = raw
                    .parse()
                    .map_err(|_| format!("`--seed` must be a whole number, got `{raw}`"))?;
            }
            "--force" if inline_value.is_some() => {
                return Err("`--force` takes no value".to_owned())
            }
            "--force" => force = true,
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(Command::Generate(Settings {
        models: models.ok_or("`--models` is required")?,
        out: out.ok_or("`--out` is required")?,
        seed,
        force,
    }))
}

/// splitmix64: tiny, fast and fully specified, so the project does not change when a
/// dependency's random number generator does.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`; `bound` must not be zero. The modulo bias is far below anything a
    /// benchmark could notice.
    fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// True once in `n` draws on average.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// `count` distinct indices in `0..len`, in the order drawn; fewer if `len` is smaller.
    fn distinct(&mut self, count: usize, len: usize) -> Vec<usize> {
        let count = count.min(len);
        let mut picked = Vec::with_capacity(count);
        while picked.len() < count {
            let index = self.below(len);
            if !picked.contains(&index) {
                picked.push(index);
            }
        }
        picked
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Layer {
    Staging,
    Cleaned,
    Gold,
    Aggregates,
}

impl Layer {
    /// Upstream first: a model only ever refers to models of the layer before its own.
    const ALL: [Layer; 4] = [
        Layer::Staging,
        Layer::Cleaned,
        Layer::Gold,
        Layer::Aggregates,
    ];

    fn folder(self) -> &'static str {
        match self {
            Layer::Staging => "staging",
            Layer::Cleaned => "cleaned",
            Layer::Gold => "gold",
            Layer::Aggregates => "aggregates",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Layer::Staging => "stg",
            Layer::Cleaned => "cln",
            Layer::Gold => "gld",
            Layer::Aggregates => "agg",
        }
    }

    fn percent(self) -> usize {
        match self {
            Layer::Staging => 40,
            Layer::Cleaned => 30,
            Layer::Gold => 20,
            Layer::Aggregates => 10,
        }
    }

    /// The name of the model numbered `index + 1` in this layer; names are unique across layers
    /// because each layer has its own prefix.
    fn model_name(self, index: usize) -> String {
        format!("{}_{:05}", self.prefix(), index + 1)
    }
}

/// Models per layer, in `Layer::ALL` order. Staging takes the rounding remainder, and every layer
/// gets at least one model so that each has something upstream to refer to.
fn layer_counts(total: usize) -> [usize; 4] {
    let mut counts = [0; 4];
    for (slot, layer) in counts.iter_mut().zip(Layer::ALL).skip(1) {
        *slot = (total * layer.percent() / 100).max(1);
    }
    counts[0] = total - counts[1..].iter().sum::<usize>();
    counts
}

/// One generated model: its SQL file and its entry in the folder's `_schema.yml`.
struct Model {
    sql: String,
    schema_entry: String,
}

/// Writes the whole project and returns the model count per layer.
fn generate(settings: &Settings) -> Result<[usize; 4], Failure> {
    prepare_out_dir(&settings.out, settings.force)?;
    let out = settings.out.as_path();

    fs::write(out.join("project.yml"), PROJECT_YML)?;

    let seeds = out.join("seeds");
    fs::create_dir_all(&seeds)?;
    let mut countries = String::from("code,name\n");
    for (code, name) in COUNTRIES {
        let _ = writeln!(countries, "{code},{name}");
    }
    fs::write(seeds.join("country_codes.csv"), countries)?;
    fs::write(seeds.join("payment_methods.csv"), PAYMENT_METHODS)?;
    fs::write(seeds.join("currencies.csv"), CURRENCIES)?;

    let macros = out.join("macros");
    fs::create_dir_all(&macros)?;
    fs::write(macros.join("cents_to_dollars.sql"), MACRO_CENTS_TO_DOLLARS)?;
    fs::write(macros.join("safe_divide.sql"), MACRO_SAFE_DIVIDE)?;
    fs::write(macros.join("column_list.sql"), MACRO_COLUMN_LIST)?;

    // One generator for the whole project, drawn from in a fixed order (layer by layer, model by
    // model), is what makes the output depend on nothing but the arguments.
    let mut rng = SplitMix64(settings.seed);
    let counts = layer_counts(settings.models);
    for (position, layer) in Layer::ALL.into_iter().enumerate() {
        let upstream_count = if position == 0 {
            0
        } else {
            counts[position - 1]
        };
        write_layer(out, layer, counts[position], upstream_count, &mut rng)?;
    }
    Ok(counts)
}

fn prepare_out_dir(out: &Path, force: bool) -> Result<(), Failure> {
    if out.exists() {
        if !out.is_dir() {
            return Err(Failure::Usage(format!(
                "`{}` exists and is not a directory",
                out.display()
            )));
        }
        let is_empty = fs::read_dir(out)?.next().is_none();
        if !is_empty {
            if !force {
                return Err(Failure::Usage(format!(
                    "`{}` is not empty\nhint: pass `--force` to delete it first",
                    out.display()
                )));
            }
            // `--force --out .` (or `..`, or `/`) would delete the caller's own work: refuse any
            // directory that contains the current one.
            let target = out.canonicalize()?;
            let current = std::env::current_dir()?.canonicalize()?;
            if current.starts_with(&target) {
                return Err(Failure::Usage(format!(
                    "refusing to delete `{}`: it contains the current directory",
                    out.display()
                )));
            }
            fs::remove_dir_all(out)?;
        }
    }
    fs::create_dir_all(out)?;
    Ok(())
}

fn write_layer(
    out: &Path,
    layer: Layer,
    count: usize,
    upstream_count: usize,
    rng: &mut SplitMix64,
) -> io::Result<()> {
    let folder_count = count.div_ceil(MODELS_PER_FOLDER);
    // Zero-padded to at least three digits so folders list in model order at any size.
    let width = folder_count.to_string().len().max(3);
    for folder_index in 0..folder_count {
        let dir = out
            .join("models")
            .join(layer.folder())
            .join(format!("part_{:0width$}", folder_index + 1));
        fs::create_dir_all(&dir)?;
        let mut schema = String::from("version: 2\n\nmodels:\n");
        let first = folder_index * MODELS_PER_FOLDER;
        for index in first..count.min(first + MODELS_PER_FOLDER) {
            let name = layer.model_name(index);
            let model = match layer {
                Layer::Staging => staging_model(index, rng),
                Layer::Cleaned => cleaned_model(index, upstream_count, rng),
                Layer::Gold => gold_model(index, upstream_count, rng),
                Layer::Aggregates => aggregates_model(index, upstream_count, rng),
            };
            fs::write(dir.join(format!("{name}.sql")), model.sql)?;
            schema.push_str(&model.schema_entry);
        }
        fs::write(dir.join("_schema.yml"), schema)?;
    }
    Ok(())
}

/// Every staging model outputs `id, amount_cents, country_code, created_at` with the same types,
/// so that cleaned models can `union all` any two of them.
fn staging_model(index: usize, rng: &mut SplitMix64) -> Model {
    let name = Layer::Staging.model_name(index);
    // Vary the numbers between models so they do not all hold identical rows.
    let factor = 3 + rng.below(97);
    let (sql, source) = if rng.one_in(4) {
        match rng.below(3) {
            0 => (
                format!(
                    "\
select
    cast(row_number() over (order by c.code, g.n) as bigint) as id,
    cast((g.n * {factor} + length(c.name)) % 1000 as bigint) as amount_cents,
    cast(c.code as varchar) as country_code,
    cast(date '2024-01-01' + (g.n * 11 % 365) * interval '1 day' as timestamp) as created_at
from {{{{ ref('country_codes') }}}} as c
cross join generate_series(1, 5) as g(n)
"
                ),
                "the country_codes seed",
            ),
            1 => (
                format!(
                    "\
select
    cast(row_number() over (order by p.method_id, g.n) as bigint) as id,
    cast((p.fee_cents + g.n * {factor}) % 1000 as bigint) as amount_cents,
    cast('c' || cast((g.n + p.method_id) % 20 as varchar) as varchar) as country_code,
    cast(date '2024-01-01' + (g.n * 5 % 365) * interval '1 day' as timestamp) as created_at
from {{{{ ref('payment_methods') }}}} as p
cross join generate_series(1, 20) as g(n)
"
                ),
                "the payment_methods seed",
            ),
            _ => (
                format!(
                    "\
select
    cast(row_number() over (order by cur.currency_code, g.n) as bigint) as id,
    cast((g.n * {factor} + cur.minor_units) % 1000 as bigint) as amount_cents,
    cast(substr(cur.currency_code, 1, 2) as varchar) as country_code,
    cast(date '2024-01-01' + (g.n * 3 % 365) * interval '1 day' as timestamp) as created_at
from {{{{ ref('currencies') }}}} as cur
cross join generate_series(1, 10) as g(n)
"
                ),
                "the currencies seed",
            ),
        }
    } else {
        let rows = 50 + rng.below(151);
        (
            format!(
                "\
select
    cast(g.n as bigint) as id,
    cast(g.n * {factor} % 1000 as bigint) as amount_cents,
    cast('c' || cast(g.n % 20 as varchar) as varchar) as country_code,
    cast(date '2024-01-01' + (g.n % 365) * interval '1 day' as timestamp) as created_at
from generate_series(1, {rows}) as g(n)
"
            ),
            "generated rows",
        )
    };
    let description = format!("Staging model {}: orders from {source}.", index + 1);
    Model {
        sql,
        schema_entry: schema_entry(&name, &description, &key_tests(None)),
    }
}

/// Cleaned models convert cents with a macro, filter on a project var, and a third of them are
/// incremental so `is_incremental()` and `this` are rendered both ways.
fn cleaned_model(index: usize, staging_count: usize, rng: &mut SplitMix64) -> Model {
    let name = Layer::Cleaned.model_name(index);
    let ref_count = 1 + rng.below(2);
    let refs = rng.distinct(ref_count, staging_count);
    let incremental = rng.one_in(3);
    let amount = if rng.one_in(2) {
        "{{ cents_to_dollars('amount_cents', var('amount_scale')) }}"
    } else {
        "{{ cents_to_dollars('amount_cents') }}"
    };

    let mut sql = String::new();
    if incremental {
        sql.push_str("{{ config(materialized='incremental', unique_key='id') }}\n\n");
    }
    sql.push_str("with unioned as (\n");
    for (position, upstream) in refs.iter().enumerate() {
        if position > 0 {
            sql.push_str("    union all\n");
        }
        // Both branches carry ids 1..n; interleaving them keeps `id` unique, as the schema promises.
        let id = match (refs.len(), position) {
            (1, _) => "id".to_owned(),
            (count, 0) => format!("id * {count} as id"),
            (count, _) => format!("id * {count} + {position} as id"),
        };
        let _ = writeln!(
            sql,
            "    select {id}, amount_cents, country_code, created_at from {{{{ ref('{}') }}}}",
            Layer::Staging.model_name(*upstream)
        );
    }
    let _ = write!(
        sql,
        "\
)

select
    id,
    {amount} as amount,
    country_code,
    created_at
from unioned
where created_at >= '{{{{ var(\"start_date\") }}}}'
"
    );
    if incremental {
        sql.push_str(
            "{% if is_incremental() %}\n  and created_at > (select max(created_at) from {{ this }})\n{% endif %}\n",
        );
    }

    let description = format!(
        "Cleaned model {}: orders from {} in dollars.",
        index + 1,
        names_sentence(Layer::Staging, &refs)
    );
    Model {
        sql,
        schema_entry: schema_entry(&name, &description, &key_tests(None)),
    }
}

/// Gold models join up to three cleaned models on `id`. The first one is the base, so every gold
/// `id` exists there and the `relationships` test to it holds.
fn gold_model(index: usize, cleaned_count: usize, rng: &mut SplitMix64) -> Model {
    let name = Layer::Gold.model_name(index);
    let ref_count = 1 + rng.below(3);
    let refs = rng.distinct(ref_count, cleaned_count);
    let finance = rng.one_in(4);
    let window_loop = rng.one_in(3);
    let safe_divide = rng.one_in(4);
    let column_list_macro = refs.len() == 1 && rng.one_in(2);

    let mut sql = String::new();
    if finance {
        sql.push_str("{{ config(tags=['finance']) }}\n\n");
    }
    let _ = write!(
        sql,
        "with base as (\n    select * from {{{{ ref('{}') }}}}\n)",
        Layer::Cleaned.model_name(refs[0])
    );
    for (position, upstream) in refs.iter().enumerate().skip(1) {
        let _ = write!(
            sql,
            ",\n\nother_{position} as (\n    select id, amount from {{{{ ref('{}') }}}}\n)",
            Layer::Cleaned.model_name(*upstream)
        );
    }
    sql.push_str("\n\nselect\n");
    if column_list_macro {
        sql.push_str(
            "    {{ column_list(['id', 'amount', 'country_code', 'created_at'], relation_alias='base') }}",
        );
    } else {
        let mut amount = "base.amount".to_owned();
        for position in 1..refs.len() {
            let _ = write!(amount, " + coalesce(other_{position}.amount, 0)");
        }
        if refs.len() > 1 {
            amount.push_str(" as amount");
        }
        let _ = write!(
            sql,
            "    base.id,\n    {amount},\n    base.country_code,\n    base.created_at"
        );
    }
    if safe_divide {
        sql.push_str(",\n    {{ safe_divide('base.amount', 'base.id') }} as amount_per_id");
    }
    if window_loop {
        sql.push_str(
            "\n    {%- for col in ['amount', 'id'] %},\n    max(base.{{ col }}) over (partition by base.country_code) as max_{{ col }}\n    {%- endfor %}",
        );
    }
    sql.push_str("\nfrom base\n");
    for position in 1..refs.len() {
        let _ = writeln!(
            sql,
            "left join other_{position} on base.id = other_{position}.id"
        );
    }

    let base = Layer::Cleaned.model_name(refs[0]);
    let description = format!(
        "Gold model {}: orders from {}.",
        index + 1,
        names_sentence(Layer::Cleaned, &refs)
    );
    Model {
        sql,
        schema_entry: schema_entry(&name, &description, &key_tests(Some(&base))),
    }
}

/// Aggregates roll gold models up to one row per country and day.
fn aggregates_model(index: usize, gold_count: usize, rng: &mut SplitMix64) -> Model {
    let name = Layer::Aggregates.model_name(index);
    let ref_count = 1 + rng.below(2);
    let refs = rng.distinct(ref_count, gold_count);

    let mut sql = String::from("with unioned as (\n");
    for (position, upstream) in refs.iter().enumerate() {
        if position > 0 {
            sql.push_str("    union all\n");
        }
        let _ = writeln!(
            sql,
            "    select country_code, created_at, amount from {{{{ ref('{}') }}}}",
            Layer::Gold.model_name(*upstream)
        );
    }
    sql.push_str(
        "\
)

select
    country_code,
    cast(created_at as date) as sales_date,
    sum(amount) as total_amount,
    count(*) as orders
from unioned
group by country_code, cast(created_at as date)
",
    );

    let description = format!(
        "Aggregate model {}: daily sales per country from {}.",
        index + 1,
        names_sentence(Layer::Gold, &refs)
    );
    let columns = "      - name: country_code\n        data_tests: [not_null]\n";
    Model {
        sql,
        schema_entry: schema_entry(&name, &description, columns),
    }
}

/// `columns:` of staging, cleaned and gold models: a unique, non-null `id`, which in gold must also
/// exist in the cleaned model it was built on.
fn key_tests(relationship_to: Option<&str>) -> String {
    let mut columns = String::from("      - name: id\n");
    match relationship_to {
        None => columns.push_str("        data_tests: [unique, not_null]\n"),
        Some(parent) => {
            let _ = write!(
                columns,
                "        data_tests:\n          - unique\n          - not_null\n          - relationships: {{to: \"ref('{parent}')\", field: id}}\n"
            );
        }
    }
    columns.push_str("      - name: country_code\n");
    columns
}

fn schema_entry(name: &str, description: &str, columns: &str) -> String {
    format!("  - name: {name}\n    description: \"{description}\"\n    columns:\n{columns}")
}

/// `stg_00003 and stg_00017`, for descriptions.
fn names_sentence(layer: Layer, indices: &[usize]) -> String {
    let names: Vec<String> = indices.iter().map(|&i| layer.model_name(i)).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_layer_gets_a_model_at_the_minimum_size() {
        assert_eq!(layer_counts(4), [1, 1, 1, 1]);
        assert_eq!(layer_counts(10_000), [4000, 3000, 2000, 1000]);
        for total in 4..500 {
            let counts = layer_counts(total);
            assert_eq!(counts.iter().sum::<usize>(), total);
            assert!(counts.iter().all(|&c| c >= 1), "{total}: {counts:?}");
        }
    }

    #[test]
    fn parses_both_flag_forms_and_defaults_the_seed() {
        let parsed = parse_args(args(&["--models=40", "--out", "x"])).unwrap();
        assert_eq!(
            parsed,
            Command::Generate(Settings {
                models: 40,
                out: PathBuf::from("x"),
                seed: 42,
                force: false,
            })
        );
    }

    #[test]
    fn rejects_bad_arguments_with_a_message() {
        assert!(parse_args(args(&["--models", "3", "--out", "x"]))
            .unwrap_err()
            .contains("at least 4"));
        assert!(parse_args(args(&["--models", "ten", "--out", "x"]))
            .unwrap_err()
            .contains("`ten`"));
        assert!(parse_args(args(&["--out", "x"]))
            .unwrap_err()
            .contains("required"));
        assert!(parse_args(args(&["--models"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse_args(args(&["--models", "5", "--out", "x", "--what"]))
            .unwrap_err()
            .contains("`--what`"));
    }

    #[test]
    fn distinct_never_repeats_and_caps_at_the_pool() {
        let mut rng = SplitMix64(7);
        for _ in 0..1000 {
            let picked = rng.distinct(3, 3);
            assert_eq!(picked.len(), 3);
            assert!(picked.iter().all(|i| *i < 3));
            assert!(picked[0] != picked[1] && picked[1] != picked[2] && picked[0] != picked[2]);
        }
        assert_eq!(rng.distinct(2, 1), vec![0]);
    }
}
