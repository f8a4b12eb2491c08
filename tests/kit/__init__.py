"""The shared test kit: free ports, tools and server harnesses that every suite may use.

It starts with the PostgreSQL harness (postgres.py, replication.py, and the pytest fixtures in pgfixtures.py).
"""
