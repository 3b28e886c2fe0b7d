"""Auth methods (userpass, approle, jwt, kubernetes, cert).

Each returns an Auth description; core mints the token.
"""
