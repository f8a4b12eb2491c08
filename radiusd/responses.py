"""Challenge-response logins at the RADIUS door: a CHAP, MS-CHAP or MS-CHAPv2 proof (decoded by otpbase.radius.chap)
checked by the core (otpcore.chap, Verifier.login_response), and what its answer carries: on an Accept of MS-CHAPv2,
MS-CHAP2-Success (which proves to the client that we knew its secret too) and the MPPE keys the NAS encrypts the
session with; of MS-CHAP, MS-CHAP-MPPE-Keys; on a Reject of either, MS-CHAP-Error.

A State in such a request is not ours to answer (our challenges ask for a code in a User-Password): a front end such
as FreeRADIUS may send the one of its own EAP conversation. It is ignored.
"""

from __future__ import annotations

from otpbase.radius.chap import ChapProof, MsChap2Proof, MsChapProof, Proof, mschap2_accept, mschap_accept, mschap_error
from otpcore.chap import FIRST_FACTORS, ChapResponse, MsChap2Response, MsChapResponse, Response
from otpcore.decision import Decision

from .jobs import AccessJob
from .verifier import VerifierLike

__all__ = ["FIRST_FACTORS", "login_response"]


def login_response(verifier: VerifierLike, job: AccessJob, door: str, now: float) -> tuple[Decision, bytes]:
    """The core's decision on the request's proof, and the attributes its reply carries."""
    request, client = job.request, job.client
    proof = request.proof
    assert proof is not None
    response = _response(proof, request.user)
    decision = verifier.login_response(request.user, response, first_factor=client.first_factor, door=door,
                                       client=client.name, now=now, source=job.addr[0])
    if isinstance(proof, ChapProof):
        return decision, b""
    if not decision.accepted:
        return decision, mschap_error(proof.ident)
    if isinstance(response, MsChap2Response):
        success = response.success()
        return decision, mschap2_accept(proof.ident, success.authenticator_response, success.keys.send_key,
                                        success.keys.recv_key, client.secret, request.authenticator)
    assert isinstance(response, MsChapResponse)
    return decision, mschap_accept(response.mppe_keys(), client.secret, request.authenticator)


def _response(proof: Proof, user: str) -> Response:
    if isinstance(proof, ChapProof):
        return ChapResponse(proof.ident, proof.response, proof.challenge)
    if isinstance(proof, MsChapProof):
        return MsChapResponse(proof.challenge, proof.nt_response)
    assert isinstance(proof, MsChap2Proof)
    return MsChap2Response(user, proof.challenge, proof.peer_challenge, proof.nt_response)
