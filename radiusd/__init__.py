"""otp-radiusd: the RADIUS door on the shared core; the packets are the codec's (otpbase.radius).

Where things are: `main` (the command line, the supervisor of the workers), `server` (one worker: its sockets, the
receive loop, reload, counters), and one module per thread's job: `receive` (the receiving thread's checks of each
datagram), `decide` (verdicts and replies, code checks in groups: group commit), `evaluate` (the evaluating threads
for the slow requests), `accounting` (Accounting-Requests recorded), `tls` (the TLS thread: RadSec connections) with
`tlsconn` (one connection), `tlsreceive` (its packets' checks) and `tlssetup` (TLS context, listening sockets).
Around them: `admission` (the queue to the evaluating threads, load shedding), `dedup` (the retransmission cache),
`droplog` (every dropped request explained, rate-limited), `clients` (the client table), `jobs` (what the threads
hand each other and share), `verifier` (what they call on the core), `storeguard` (a verifier that reopens a replaced
or broken store), `checkpoint` (the store's log copied in the background), `udp`, `logsink`, `scrv1` (OpenVPN's
static challenge), `demo`, `dictionary`, `replyattrs` (what an Accept grants, checked and encoded with the
dictionary).

Kept light: importing the package loads nothing; `radiusd.main` is the entry point.
"""

__all__: list[str] = []
