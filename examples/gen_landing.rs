//! Generates the example's landing zone: an on-premise shop database replicated by a DMS-like
//! process, as full-load files and daily CDC files.
//!
//! ```text
//! cargo run --example gen_landing -- --out landing                     # the committed zone
//! cargo run --release --example gen_landing -- --orders 5000000 --out /tmp/big --force
//! cargo run --example gen_landing -- --out landing --next-day          # land one more day
//! ```
//!
//! Layout, per source table: `<out>/shop/<table>/LOAD00000001.parquet` (the full load), then one
//! file per day with changes, named by the time DMS wrote it (`20240702-061500000.parquet`). Every
//! row starts with `Op` (`I`, `U` or `D`; the full load is all `I`, as DMS writes it with
//! `includeOpForFullLoad`), `commit_ts` (the source commit time) and `change_seq` (a number that
//! orders changes within one commit, like DMS's `AR_H_CHANGE_SEQ`). `customers` is exported as
//! CSV with a header, with the pitfalls real exports have: commas and quotes inside names and
//! addresses, padded and mixed-case text, dates in two formats.
//!
//! The days carry what a shop's database does: new customers and orders (with their lines and
//! payments in the same commit), customers changing their e-mail or moving house, orders moving from placed to shipped, completed, returned or
//! cancelled, corrected order lines, renamed products, test orders deleted with their lines and
//! payments (and now and then restored under the same ids), rows DMS delivers twice after a
//! restart, and a few invalid changes the cleaned layer must reject: an unknown order status, a
//! line with quantity 0, a payment without a method, an impossible signup date.
//!
//! Everything derives from `--seed`, `--orders` and the day number, so the same arguments give
//! the same files, and `--next-day` replays the simulation to write exactly the day after the
//! last one (`<out>/generator.json` remembers the arguments).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
Generate the retail-finance example's landing zone (DMS layout: full load, then daily CDC files).

Usage: gen_landing [--out DIR] [--orders N] [--days D] [--seed S] [--force]
       gen_landing [--out DIR] --next-day

Options:
  --out DIR     where to write (`DIR/shop/<table>/…`) [default: landing]
  --orders N    orders in the full load; the other tables scale with it [default: 1500]
  --days D      daily CDC batches after the full load [default: 3]
  --seed S      seed of every random choice [default: 7]
  --force       replace DIR's `shop/` folder if it exists
  --next-day    land the next day's CDC batch into an existing zone
  -h, --help    print this help";

const CUSTOMER_COLUMNS: &str = "customer_id, first_name, last_name, email, street, city, country_code, signup_date, updated_at";

/// The day of the full load; CDC day `d` is this date plus `d` days.
const LOAD_DAY: (i32, u32, u32) = (2024, 6, 30);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Params {
    orders: u64,
    days: u32,
    seed: u64,
}

impl Params {
    fn to_json(self) -> String {
        format!(
            "{{\"orders\": {}, \"days\": {}, \"seed\": {}}}\n",
            self.orders, self.days, self.seed
        )
    }

    fn from_json(text: &str) -> Option<Params> {
        let number = |key: &str| -> Option<u64> {
            let start = text.find(&format!("\"{key}\""))?;
            let rest = &text[start + key.len() + 2..];
            let rest = rest.trim_start().strip_prefix(':')?.trim_start();
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        Some(Params {
            orders: number("orders")?,
            days: u32::try_from(number("days")?).ok()?,
            seed: number("seed")?,
        })
    }
}

fn run() -> Result<(), String> {
    let mut out = PathBuf::from("landing");
    let mut params = Params {
        orders: 1500,
        days: 3,
        seed: 7,
    };
    let mut force = false;
    let mut next_day = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("`{name}` needs a value"));
        match arg.as_str() {
            "--out" => out = PathBuf::from(value("--out")?),
            "--orders" => params.orders = parse(&value("--orders")?, "--orders")?,
            "--days" => params.days = parse(&value("--days")?, "--days")?,
            "--seed" => params.seed = parse(&value("--seed")?, "--seed")?,
            "--force" => force = true,
            "--next-day" => next_day = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unexpected argument `{other}`\n\n{USAGE}")),
        }
    }
    if params.orders < 100 {
        return Err("`--orders` must be at least 100".into());
    }
    let state_file = out.join("generator.json");
    let con = duckdb::Connection::open_in_memory().map_err(|e| e.to_string())?;
    if next_day {
        let text = std::fs::read_to_string(&state_file).map_err(|e| {
            format!(
                "cannot read `{}` ({e}); generate the zone first, without --next-day",
                state_file.display()
            )
        })?;
        let mut previous = Params::from_json(&text)
            .ok_or(format!("`{}` is not the generator's", state_file.display()))?;
        previous.days += 1;
        let mut shop = Shop::new(previous);
        // The full load's rows are never needed again (DMS re-delivers from a previous day's
        // file only), so replaying it only updates the shop and the random draws.
        shop.recording = false;
        shop.full_load();
        shop.recording = true;
        for day in 1..previous.days {
            shop.day(day);
        }
        shop.batches.clear();
        shop.day(previous.days);
        write_batches(&con, &out, &shop.batches)?;
        std::fs::write(&state_file, previous.to_json()).map_err(|e| e.to_string())?;
        println!(
            "landed day {} ({}) in {}",
            previous.days,
            date_text(day_number(previous.days)),
            out.display()
        );
        return Ok(());
    }
    let shop_dir = out.join("shop");
    if shop_dir.exists() {
        if !force {
            return Err(format!(
                "`{}` exists; pass --force to replace it, or --next-day to add a day",
                shop_dir.display()
            ));
        }
        std::fs::remove_dir_all(&shop_dir).map_err(|e| e.to_string())?;
    }
    let mut shop = Shop::new(params);
    shop.full_load();
    write_batches(&con, &out, &shop.batches)?;
    shop.batches.clear();
    for day in 1..=params.days {
        shop.day(day);
        write_batches(&con, &out, &shop.batches)?;
        shop.batches.clear();
    }
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    std::fs::write(&state_file, params.to_json()).map_err(|e| e.to_string())?;
    println!(
        "wrote a full load and {} CDC days ({} orders) to {}",
        params.days,
        params.orders,
        out.display()
    );
    Ok(())
}

fn parse<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("`{name}` takes a number, got `{text}`"))
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A stable hash of a few numbers, for values derived from ids rather than drawn in sequence.
fn mix(parts: &[u64]) -> u64 {
    let mut rng = Rng(0x5EED);
    for part in parts {
        rng.0 ^= part.wrapping_mul(0x2545_F491_4F6C_DD1D);
        rng.next();
    }
    rng.next()
}

const FIRST_NAMES: &[&str] = &[
    "Klara",
    "Ben",
    "Luca",
    "Greta",
    "Sofia",
    "Jan",
    "Marie",
    "Pierre",
    "Ana",
    "Lars",
    "Eva",
    "Hugo",
    "Noor",
    "Sven",
    "Lucía",
    "Anna \"Annie\"",
    "Jean-Luc",
    "Zoë",
    "Matteo",
    "Ines",
];
const LAST_NAMES: &[&str] = &[
    "de Vries",
    "Dupont",
    "López",
    "Müller",
    "O'Brien",
    "Janssen",
    "Rossi",
    "Smith, Jr.",
    "García",
    "Novak",
    "Berg",
    "Dubois",
    "Schmidt",
    "Visser",
];
/// Country, city and a street template (`{n}` is the house number).
const PLACES: &[(&str, &str, &str)] = &[
    ("DE", "Berlin", "Hauptstraße {n}"),
    ("DE", "Hamburg", "Mönckebergstraße {n}, 2. OG"),
    ("FR", "Paris", "{n}, rue de la Paix"),
    ("FR", "Lyon", "{n} quai \"Saint-Antoine\""),
    ("NL", "Utrecht", "Oudegracht {n}"),
    ("NL", "Amsterdam", "Prinsengracht {n}-II"),
    ("ES", "Madrid", "Calle Mayor, {n}"),
    ("IT", "Milano", "Via Dante {n}"),
    ("BE", "Bruxelles", "Rue Neuve {n}, bte 3"),
    ("AT", "Wien", "Kärntner Straße {n}"),
];
const CATEGORIES: &[&str] = &["household", "electronics", "apparel", "grocery", "toys"];
const PRODUCT_WORDS: &[&str] = &[
    "Kettle",
    "Lamp",
    "Jacket",
    "Coffee",
    "Puzzle",
    "Headphones",
    "Mug",
    "Scarf",
    "Tea",
    "Blocks",
];
const METHODS: &[&str] = &["card", "sepa", "voucher", "cash", "CARD", " Sepa"];

/// Order statuses as the source writes them (case and padding vary by client application).
fn status_text(status: Status, rng: &mut Rng) -> String {
    let base = match status {
        Status::Placed => "placed",
        Status::Shipped => "shipped",
        Status::Completed => "completed",
        Status::Returned => "returned",
        Status::Cancelled => "cancelled",
    };
    match rng.below(10) {
        0 => base.to_uppercase(),
        1 => format!(" {}", capitalize(base)),
        _ => base.to_string(),
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Placed,
    Shipped,
    Completed,
    Returned,
    Cancelled,
}

#[derive(Debug, Clone)]
struct Order {
    customer: u64,
    store: u64,
    /// Days since 1970-01-01.
    date: i64,
    status: Status,
    lines: u64,
    live: bool,
}

/// One change row: its commit, then the table's columns as SQL literals (`NULL` for none).
#[derive(Debug, Clone)]
struct Change {
    op: char,
    commit_ts: String,
    seq: u64,
    values: Vec<Option<String>>,
}

/// The rows one file holds.
#[derive(Debug, Default)]
struct Batch {
    table: &'static str,
    file: String,
    rows: Vec<Change>,
}

const TABLES: [&str; 6] = [
    "customers",
    "products",
    "stores",
    "orders",
    "order_items",
    "payments",
];

/// The source database, replayed day by day.
struct Shop {
    params: Params,
    rng: Rng,
    customers: u64,
    products: u64,
    stores: u64,
    orders: Vec<Order>,
    /// Order lines whose quantity was corrected: `(order, line) -> quantity`.
    quantities: HashMap<(u64, u64), u64>,
    /// Products renamed since the full load.
    product_names: HashMap<u64, String>,
    customer_emails: HashMap<u64, String>,
    /// Where customers who moved live now (an index into `PLACES`).
    customer_places: HashMap<u64, usize>,
    deleted: Vec<u64>,
    seq: u64,
    /// Whether the full load's changes are kept as rows; off while `--next-day` replays it.
    recording: bool,
    /// The current day's changes per table, in commit order.
    pending: HashMap<&'static str, Vec<Change>>,
    /// Yesterday's rows, some of which DMS delivers again.
    yesterday: HashMap<&'static str, Vec<Change>>,
    batches: Vec<Batch>,
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A column value (`None` is NULL).
fn val(value: impl ToString) -> Option<String> {
    Some(value.to_string())
}

fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(if m <= 2 { y - 1 } else { y });
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn date_text(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn day_number(day: u32) -> i64 {
    days_from_civil(LOAD_DAY.0, LOAD_DAY.1, LOAD_DAY.2) + i64::from(day)
}

impl Shop {
    fn new(params: Params) -> Shop {
        Shop {
            params,
            rng: Rng(params.seed.wrapping_mul(0x9E37_79B9) ^ 0xDA7A),
            customers: (params.orders / 8).max(50),
            products: (params.orders / 1000).max(30),
            stores: (params.orders / 100_000).clamp(5, 60),
            orders: Vec::new(),
            quantities: HashMap::new(),
            product_names: HashMap::new(),
            customer_emails: HashMap::new(),
            customer_places: HashMap::new(),
            deleted: Vec::new(),
            seq: 0,
            recording: true,
            pending: HashMap::new(),
            yesterday: HashMap::new(),
            batches: Vec::new(),
        }
    }

    fn push(
        &mut self,
        table: &'static str,
        op: char,
        commit_ts: &str,
        values: Vec<Option<String>>,
    ) {
        self.seq += 1;
        let change = Change {
            op,
            commit_ts: commit_ts.to_string(),
            seq: self.seq,
            values,
        };
        self.pending.entry(table).or_default().push(change);
    }

    /// `quirks`: a padded e-mail, a padded first name (drawn by [`customer_quirks`]).
    fn customer_row(&self, id: u64, updated_at: &str, quirks: [bool; 2]) -> Vec<Option<String>> {
        let h = mix(&[self.params.seed, 1, id]);
        let first = FIRST_NAMES[(h % FIRST_NAMES.len() as u64) as usize];
        let last = LAST_NAMES[((h >> 8) % LAST_NAMES.len() as u64) as usize];
        let place = self
            .customer_places
            .get(&id)
            .copied()
            .unwrap_or(((h >> 16) % PLACES.len() as u64) as usize);
        let (country, city, street) = PLACES[place];
        let email = self.customer_emails.get(&id).cloned().unwrap_or_else(|| {
            let local: String = format!("{first}.{last}")
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '.')
                .collect();
            format!("{}{id}@Example.com", local.to_lowercase())
        });
        // Padded and mixed-case text, as the shop's forms let it in.
        let email = if quirks[0] {
            format!("  {email} ")
        } else {
            email
        };
        let first = if quirks[1] {
            format!(" {first} ")
        } else {
            first.to_string()
        };
        let signup = days_from_civil(2022, 1, 1) + (h >> 24) as i64 % 900;
        let (y, m, d) = civil_from_days(signup);
        // The legacy client wrote dates as DD.MM.YYYY.
        let signup_text = if (h >> 40) % 4 == 0 {
            format!("{d:02}.{m:02}.{y:04}")
        } else {
            format!("{y:04}-{m:02}-{d:02}")
        };
        vec![
            val(id),
            val(&first),
            val(last),
            val(&email),
            val(street.replace("{n}", &(1 + (h >> 32) % 120).to_string())),
            val(city),
            val(country),
            val(&signup_text),
            val(updated_at),
        ]
    }

    fn product_row(&self, id: u64, updated_at: &str) -> Vec<Option<String>> {
        let h = mix(&[self.params.seed, 2, id]);
        let name = self.product_names.get(&id).cloned().unwrap_or_else(|| {
            format!(
                "{} {id:04}",
                PRODUCT_WORDS[(h % PRODUCT_WORDS.len() as u64) as usize]
            )
        });
        vec![
            val(id),
            val(format!("SKU-{id:06}")),
            val(&name),
            val(CATEGORIES[((h >> 8) % CATEGORIES.len() as u64) as usize]),
            val(product_price(self.params.seed, id)),
            val(updated_at),
        ]
    }

    fn store_row(&self, id: u64) -> Vec<Option<String>> {
        let (country, city, _) = PLACES[(id as usize - 1) % PLACES.len()];
        let online = id == 1;
        vec![
            val(id),
            val(if online {
                "Online".to_string()
            } else {
                format!("{city} {id:02}")
            }),
            if online { None } else { val(city) },
            val(country),
            val(date_text(days_from_civil(2020, 1, 1) + id as i64 * 30)),
        ]
    }

    fn order_row(&self, id: u64, updated_at: &str, status: &str) -> Vec<Option<String>> {
        let order = &self.orders[id as usize - 1];
        vec![
            val(id),
            val(order.customer),
            val(order.store),
            val(date_text(order.date)),
            val(status),
            val("EUR"),
            val(updated_at),
        ]
    }

    fn quantity(&self, order: u64, line: u64) -> u64 {
        self.quantities
            .get(&(order, line))
            .copied()
            .unwrap_or_else(|| 1 + mix(&[self.params.seed, 3, order, line]) % 4)
    }

    fn line_row(
        &self,
        order: u64,
        line: u64,
        quantity: u64,
        updated_at: &str,
    ) -> Vec<Option<String>> {
        let h = mix(&[self.params.seed, 4, order, line]);
        let product = 1 + h % self.products;
        let price = product_price(self.params.seed, product);
        let discount = if (h >> 12) % 5 == 0 {
            price * quantity / 10
        } else {
            0
        };
        vec![
            val(order),
            val(line),
            val(product),
            val(quantity),
            val(price),
            val(discount),
            val(updated_at),
        ]
    }

    fn order_total(&self, order: u64) -> u64 {
        let lines = self.orders[order as usize - 1].lines;
        (1..=lines)
            .map(|line| {
                let row = self.line_row(order, line, self.quantity(order, line), "");
                let number = |i: usize| -> u64 {
                    row[i].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0)
                };
                let (quantity, price, discount) = (number(3), number(4), number(5));
                quantity * price - discount
            })
            .sum()
    }

    /// How many payments pay an order: one, or two splitting the total.
    fn payment_parts(&self, order: u64) -> u64 {
        if mix(&[self.params.seed, 5, order]) % 10 == 0 {
            2
        } else {
            1
        }
    }

    /// The order's payments; `missing[k]` leaves payment `k` without a method.
    fn payment_rows(
        &self,
        order: u64,
        paid_at: &str,
        missing: &[bool],
    ) -> Vec<Vec<Option<String>>> {
        let total = self.order_total(order);
        let h = mix(&[self.params.seed, 5, order]);
        let parts = self.payment_parts(order);
        (0..parts)
            .map(|k| {
                let amount = if parts == 1 {
                    total
                } else if k == 0 {
                    total / 2
                } else {
                    total - total / 2
                };
                let method = METHODS[((h >> (8 + k * 4)) % METHODS.len() as u64) as usize];
                // Now and then the till sends no method: the cleaned layer rejects the row.
                let method = if missing.get(k as usize) == Some(&true) {
                    None
                } else {
                    val(method)
                };
                let id = order * 2 + k;
                vec![
                    val(id),
                    val(order),
                    method,
                    val(amount),
                    val(paid_at),
                    val(paid_at),
                ]
            })
            .collect()
    }

    fn full_load(&mut self) {
        let load_day = day_number(0);
        let load_ts = format!("{} 23:59:59", date_text(load_day));
        let mut rng = Rng(self.rng.next());
        for id in 1..=self.customers {
            let quirks = customer_quirks(&mut rng);
            self.emit("customers", 'I', &load_ts, |shop| {
                shop.customer_row(id, &load_ts, quirks)
            });
        }
        for id in 1..=self.products {
            let row = self.product_row(id, &load_ts);
            self.push("products", 'I', &load_ts, row);
        }
        for id in 1..=self.stores {
            let row = self.store_row(id);
            self.push("stores", 'I', &load_ts, row);
        }
        let first_day = days_from_civil(2024, 1, 1);
        let span = (load_day - first_day + 1) as u64;
        for id in 1..=self.params.orders {
            let date = first_day + (id * span / (self.params.orders + 1)) as i64;
            let age = load_day - date;
            let status = match rng.below(100) {
                _ if age < 3 => Status::Placed,
                _ if age < 7 => Status::Shipped,
                0..=7 => Status::Cancelled,
                8..=12 => Status::Returned,
                _ => Status::Completed,
            };
            self.orders.push(Order {
                customer: 1 + rng.below(self.customers),
                store: 1 + rng.below(self.stores),
                date,
                status,
                lines: 1 + rng.below(4),
                live: true,
            });
            self.insert_order(id, &load_ts, status, &mut rng);
        }
        self.flush(0);
    }

    /// The order, its lines and its payments, in one commit.
    fn insert_order(&mut self, id: u64, commit_ts: &str, status: Status, rng: &mut Rng) {
        let text = status_text(status, rng);
        let missing: Vec<bool> = (0..self.payment_parts(id)).map(|_| rng.chance(5)).collect();
        self.emit("orders", 'I', commit_ts, |shop| {
            shop.order_row(id, commit_ts, &text)
        });
        for line in 1..=self.orders[id as usize - 1].lines {
            self.emit("order_items", 'I', commit_ts, |shop| {
                shop.line_row(id, line, shop.quantity(id, line), commit_ts)
            });
        }
        if self.recording {
            for row in self.payment_rows(id, commit_ts, &missing) {
                self.push("payments", 'I', commit_ts, row);
            }
        } else {
            self.seq += missing.len() as u64;
        }
    }

    /// Records a change whose row is built only when it is kept (replaying the full load for
    /// `--next-day` only needs its effect on the shop and on the random draws).
    fn emit(
        &mut self,
        table: &'static str,
        op: char,
        commit_ts: &str,
        row: impl FnOnce(&Shop) -> Vec<Option<String>>,
    ) {
        if self.recording {
            let values = row(self);
            self.push(table, op, commit_ts, values);
        } else {
            self.seq += 1;
        }
    }

    /// One day of changes.
    fn day(&mut self, day: u32) {
        let mut rng = Rng(mix(&[self.params.seed, 100, u64::from(day)]));
        let today = day_number(day);
        let scale = self.params.orders;
        // Commits from 08:00, in milliseconds, spaced so the day's transactions (about
        // scale / 40) end well before midnight; the clock never wraps past 23:59:59.999.
        let mut clock = 8 * 3_600_000u64;
        let step = (50_000_000 / (scale / 40 + 50)).max(2);
        let mut tick = |rng: &mut Rng| {
            clock = (clock + 1 + rng.below(step)).min(24 * 3_600_000 - 1);
            let (h, m, s, ms) = (
                clock / 3_600_000,
                clock / 60_000 % 60,
                clock / 1000 % 60,
                clock % 1000,
            );
            format!("{} {h:02}:{m:02}:{s:02}.{ms:03}", date_text(today))
        };
        // Customers: sign-ups and e-mail changes (one in twenty with an impossible signup date).
        for _ in 0..(scale / 400).max(2) {
            self.customers += 1;
            let ts = tick(&mut rng);
            let row = self.customer_row(self.customers, &ts, customer_quirks(&mut rng));
            self.push("customers", 'I', &ts, row);
        }
        for _ in 0..(scale / 800).max(2) {
            let id = 1 + rng.below(self.customers);
            let ts = tick(&mut rng);
            let email = format!("customer{id}.{day}@example.org");
            self.customer_emails.insert(id, email);
            let row = self.customer_row(id, &ts, customer_quirks(&mut rng));
            self.push("customers", 'U', &ts, row);
        }
        let invalid = (scale / 20_000).max(1);
        for _ in 0..invalid {
            let id = 1 + rng.below(self.customers);
            let ts = tick(&mut rng);
            let mut row = self.customer_row(id, &ts, customer_quirks(&mut rng));
            row[7] = val("31.02.2023");
            self.push("customers", 'U', &ts, row);
        }
        // Products: a rename now and then (the previous name stays in history only).
        if rng.chance(700) {
            let id = 1 + rng.below(self.products);
            let ts = tick(&mut rng);
            self.product_names
                .insert(id, format!("{} (new)", rng.pick(PRODUCT_WORDS)));
            let row = self.product_row(id, &ts);
            self.push("products", 'U', &ts, row);
        }
        // New orders, with their lines and payments.
        for _ in 0..(scale / 125).max(5) {
            let id = self.orders.len() as u64 + 1;
            self.orders.push(Order {
                customer: 1 + rng.below(self.customers),
                store: 1 + rng.below(self.stores),
                date: today,
                status: Status::Placed,
                lines: 1 + rng.below(4),
                live: true,
            });
            let ts = tick(&mut rng);
            self.insert_order(id, &ts, Status::Placed, &mut rng);
        }
        // Status changes of recent orders.
        let recent = (self.orders.len() as u64).min(scale / 10 + 20);
        for _ in 0..(scale / 200).max(4) {
            let id = self.orders.len() as u64 - rng.below(recent);
            let order = &self.orders[id as usize - 1];
            if !order.live {
                continue;
            }
            let next = match order.status {
                Status::Placed if rng.chance(100) => Status::Cancelled,
                Status::Placed => Status::Shipped,
                Status::Shipped => Status::Completed,
                Status::Completed if rng.chance(150) => Status::Returned,
                _ => continue,
            };
            self.orders[id as usize - 1].status = next;
            let ts = tick(&mut rng);
            let text = status_text(next, &mut rng);
            let row = self.order_row(id, &ts, &text);
            self.push("orders", 'U', &ts, row);
        }
        // Order statuses the source application should never have written: rejected.
        for _ in 0..invalid {
            let id = self.orders.len() as u64 - rng.below(recent);
            if self.orders[id as usize - 1].live {
                let ts = tick(&mut rng);
                let row = self.order_row(id, &ts, "unknown");
                self.push("orders", 'U', &ts, row);
            }
        }
        // Lines corrected to quantity 0, which the shop should have deleted: rejected.
        for _ in 0..invalid {
            let id = self.orders.len() as u64 - rng.below(recent);
            let order = self.orders[id as usize - 1].clone();
            if order.live {
                let line = 1 + rng.below(order.lines);
                let ts = tick(&mut rng);
                let row = self.line_row(id, line, 0, &ts);
                self.push("order_items", 'U', &ts, row);
            }
        }
        // Corrected quantities on placed orders.
        for _ in 0..(scale / 1000).max(2) {
            let id = self.orders.len() as u64 - rng.below(recent);
            let order = self.orders[id as usize - 1].clone();
            if !order.live || order.status != Status::Placed {
                continue;
            }
            let line = 1 + rng.below(order.lines);
            let ts = tick(&mut rng);
            let quantity = 1 + rng.below(6);
            self.quantities.insert((id, line), quantity);
            let row = self.line_row(id, line, quantity, &ts);
            self.push("order_items", 'U', &ts, row);
        }
        // Test orders deleted, lines and payments first (the foreign keys cascade).
        for _ in 0..(scale / 5000).max(1) {
            let id = self.orders.len() as u64 - rng.below(recent);
            if !self.orders[id as usize - 1].live {
                continue;
            }
            let ts = tick(&mut rng);
            let status = self.orders[id as usize - 1].status;
            for row in self.payment_rows(id, &ts, &[]) {
                self.push("payments", 'D', &ts, row);
            }
            for line in 1..=self.orders[id as usize - 1].lines {
                let row = self.line_row(id, line, self.quantity(id, line), &ts);
                self.push("order_items", 'D', &ts, row);
            }
            let text = status_text(status, &mut Rng(0));
            let row = self.order_row(id, &ts, &text);
            self.push("orders", 'D', &ts, row);
            self.orders[id as usize - 1].live = false;
            self.deleted.push(id);
        }
        // A deleted order restored from a backup, under its old ids.
        if day % 2 == 0 && !self.deleted.is_empty() {
            let id = self.deleted.remove(0);
            self.orders[id as usize - 1].live = true;
            let ts = tick(&mut rng);
            let status = self.orders[id as usize - 1].status;
            self.insert_order(id, &ts, status, &mut rng);
        }
        // Customers moving house, last in the day and from a stream of their own, so the
        // changes above are what they were before moves were simulated.
        let mut moves = Rng(mix(&[self.params.seed, 101, u64::from(day)]));
        for _ in 0..(scale / 500).max(2) {
            let id = 1 + moves.below(self.customers);
            let ts = tick(&mut moves);
            self.customer_places
                .insert(id, moves.below(PLACES.len() as u64) as usize);
            let row = self.customer_row(id, &ts, customer_quirks(&mut moves));
            self.push("customers", 'U', &ts, row);
        }
        self.flush(day);
    }

    /// Turns the day's changes into files: one per table with changes, plus rows DMS delivers
    /// again from yesterday's file after a task restart.
    fn flush(&mut self, day: u32) {
        let mut rng = Rng(mix(&[self.params.seed, 200, u64::from(day)]));
        for table in TABLES {
            let mut rows = self.pending.remove(table).unwrap_or_default();
            if day > 1 {
                if let Some(previous) = self.yesterday.get(table) {
                    let again = (previous.len() / 50).max(1);
                    let start = rng.below(previous.len() as u64 + 1) as usize;
                    rows.splice(0..0, previous.iter().skip(start).take(again).cloned());
                }
            }
            if rows.is_empty() {
                self.yesterday.remove(table);
                continue;
            }
            let extension = if table == "customers" {
                "csv"
            } else {
                "parquet"
            };
            let file = if day == 0 {
                format!("LOAD00000001.{extension}")
            } else {
                let (y, m, d) = civil_from_days(day_number(day) + 1);
                format!("{y:04}{m:02}{d:02}-061500000.{extension}")
            };
            if day > 0 {
                self.yesterday.insert(table, rows.clone());
            }
            self.batches.push(Batch { table, file, rows });
        }
    }
}

/// A customer row's quirks: a padded e-mail, a padded first name.
fn customer_quirks(rng: &mut Rng) -> [bool; 2] {
    [rng.chance(300), rng.chance(100)]
}

fn product_price(seed: u64, product: u64) -> u64 {
    199 + mix(&[seed, 6, product]) % 25_000
}

fn columns(table: &str) -> &'static str {
    match table {
        "customers" => "customer_id integer, first_name varchar, last_name varchar, email varchar, street varchar, city varchar, country_code varchar, signup_date varchar, updated_at timestamp",
        "products" => "product_id integer, sku varchar, product_name varchar, category varchar, unit_price_cents bigint, updated_at timestamp",
        "stores" => "store_id integer, store_name varchar, city varchar, country_code varchar, opened_on date",
        "orders" => "order_id bigint, customer_id integer, store_id integer, order_date date, status varchar, currency varchar, updated_at timestamp",
        "order_items" => "order_id bigint, line_number integer, product_id integer, quantity integer, unit_price_cents bigint, discount_cents bigint, updated_at timestamp",
        _ => "payment_id bigint, order_id bigint, payment_method varchar, amount_cents bigint, paid_at timestamp, updated_at timestamp",
    }
}

/// Writes each batch through DuckDB: the rows go to a CSV file DuckDB loads into a typed table,
/// then `COPY` writes the landing file in row order.
fn write_batches(con: &duckdb::Connection, out: &Path, batches: &[Batch]) -> Result<(), String> {
    let sql_error = |e: duckdb::Error| e.to_string();
    let scratch = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    for batch in batches {
        let folder = out.join("shop").join(batch.table);
        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
        {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_path(scratch.path())
                .map_err(|e| e.to_string())?;
            for change in &batch.rows {
                let mut record = vec![
                    change.op.to_string(),
                    change.commit_ts.clone(),
                    change.seq.to_string(),
                ];
                record.extend(
                    change
                        .values
                        .iter()
                        .map(|v| v.clone().unwrap_or_else(|| NULL_MARKER.to_string())),
                );
                writer.write_record(&record).map_err(|e| e.to_string())?;
            }
            writer.flush().map_err(|e| e.to_string())?;
        }
        con.execute_batch(&format!(
            "create or replace table batch (\"Op\" varchar, commit_ts timestamp, change_seq bigint, {});
             copy batch from {} (format csv, header false, nullstr {}, quote '\"', escape '\"')",
            columns(batch.table),
            literal(&scratch.path().to_string_lossy()),
            literal(NULL_MARKER),
        ))
        .map_err(sql_error)?;
        let path = folder.join(&batch.file);
        let target = literal(&path.to_string_lossy());
        let copy = if batch.table == "customers" {
            format!(
                "copy (select \"Op\", strftime(commit_ts, '%Y-%m-%d %H:%M:%S.%g') as commit_ts, change_seq, {CUSTOMER_COLUMNS} from batch) to {target} (format csv, header true)"
            )
        } else {
            format!(
                "copy batch to {target} (format parquet, compression zstd, row_group_size 122880)"
            )
        };
        con.execute_batch(&copy).map_err(sql_error)?;
    }
    Ok(())
}

/// How the scratch CSV writes NULL (no value the shop writes looks like it).
const NULL_MARKER: &str = "\\N";
