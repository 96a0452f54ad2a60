"""Adapters from published outage datasets to pollwatch's Observations and Labels.

- `monash`: Monash IP Observatory connectivity index CSVs (LOCAL wall-clock times) -> a regional
  `connectivity_index` signal in UTC.
- `ooni_hourly`: OONI hourly failure fractions per ASN -> `service_failure_rate` with counts.
- `labels`: IODA's curated outage list and the Kenya 2023 Telegram block -> evaluation Labels.

The datasets themselves are not part of the project (see docs/detection.md): point the
adapters at the files.
"""

from pollwatch.adapters.labels import ioda_labels, kenya_telegram_label
from pollwatch.adapters.monash import read_monash
from pollwatch.adapters.ooni_hourly import read_ooni_hourly

__all__ = ["ioda_labels", "kenya_telegram_label", "read_monash", "read_ooni_hourly"]
