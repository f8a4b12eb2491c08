"""The shared test kit: free ports, tools, server harnesses (PostgreSQL, slapd), throw-away certificate
authorities and network faults that every suite may use."""
