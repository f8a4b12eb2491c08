"""`otp-admin`, the admin door: provisioning from the command line, one module per job.

main (arguments, exit statuses) · install (init) · users (user ...) · tokens (token add/list/enable/disable/delete)
· codes (token verify/resync/send: codes checked and sent through the core's Verifier) · imports (import) · pamline
(pam-config) · trail (audit, sessions) · output, stdin (tables, times, secrets read from standard input).
The provisioning library itself is otpcore.admin: this package only turns arguments into its calls and back.
"""

__all__: list[str] = []
