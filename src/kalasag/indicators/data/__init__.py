"""Reference data of the indicators room (country UTC offsets; see make_utc_offsets.py)."""
