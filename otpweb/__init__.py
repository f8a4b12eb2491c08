"""The HTTP door, `otp-web`: the validate API for applications and the self-service portal for users, over the same
core and store as the RADIUS and PAM doors (an ASGI app served by uvicorn; pages from Jinja2 templates, no script).

- main: the command. app: the application, its routes and the security headers of every answer. door: what the
  handlers share (config, Verifiers, sessions, templates). api and openapi: the validate API and its description.
  portal: login, code and enrolment pages; account: the user's tokens and addresses. verifiers: the core off the
  event loop. sessions: cookies and CSRF. pages: templates and QR codes. forms: request bodies.
"""
