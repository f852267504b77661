"""Reading finished runs into tables and verdicts: ``collect`` (run directories → frames), ``tables`` (Table 1 and
the other comparisons), ``stats``, ``report`` (REPORT.md), ``paper_numbers`` (the paper's own values, labelled)."""
