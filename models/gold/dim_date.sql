{#- One row per calendar day of the reporting period. -#}
with days as (
    select day as date_day
    from ({{ calendar_days(var("calendar_start"), var("calendar_end")) }}) as calendar
)

select
    {{ date_key('date_day') }} as date_key,
    date_day,
    extract(year from date_day) as year,
    extract(month from date_day) as month,
    extract(day from date_day) as day_of_month,
    {{ iso_day_of_week('date_day') }} as iso_day_of_week,
    cast(date_trunc('month', date_day) as date) as month_start
from days
