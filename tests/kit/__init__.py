"""The shared test kit: every suite takes its ports, tools, codes and servers from here, one small module a job.

- ports: free loopback TCP/UDP ports. tools: this environment's console scripts and the system tools, a missing one
  failing the test; otp_admin(). codes: reference codes from oathtool, secrets.
- config: the TOML config of a test installation (store, listen addresses, [[radius.clients]], policy).
- radiusd: a real otp-radiusd (Radiusd: the process on a config; RadiusServer: an installation of its own).
- radius_client: RADIUS requests built by hand, reply checks, a UDP client, pyrad's client. scripted: a UDP server
  answering with a handler.
- pamtester: pamtester runs and their PAM_* outcome. pamservices: throw-away /etc/pam.d services, pam_pwdfile files.
- certs: throw-away certificate authorities. netfaults: ports that refuse, stay silent or never connect.
- postgres, replication, pgfixtures: private PostgreSQL clusters. slapd, directory: private OpenLDAP/AD-like
  directories. processes: processes seen through /proc.
- fixtures: the kit's pytest fixtures (require_tool, pam_service, make_server), registered once in tests/conftest.py.
"""
