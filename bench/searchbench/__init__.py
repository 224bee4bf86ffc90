"""The parts of bench/search.py (calendar month view and name search over 1,000,000
meetings), one idea each: names, data, store, queries, timing, plans."""
