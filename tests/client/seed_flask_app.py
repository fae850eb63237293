"""The Flask backend of Hanko's passkey tutorial ("Integrate passkeys into your Python Flask app",
teamhanko/passkeys-python), its four passkey routes as published, with only `baseUrl` changed from
`https://passkeys.hanko.io/{tenant_id}` to Passgate's (on the test's port instead of 8000).

Around them, marked SCAFFOLDING, what the tutorial assumes the app already has: a user list, a secret
key and a password sign-in that fills the session."""
# ruff: noqa

import os

import jwt
import requests
from flask import Flask, jsonify, request, session

# SCAFFOLDING: the app the tutorial starts from.
app = Flask(__name__)
app.secret_key = "test-only-secret"
users = [{"id": "7f1d4ab0-0c1e-4a4c-9a57-5f2c34e3a001", "email": "ann@example.com"}]


@app.route("/login", methods=["POST"])
def password_login():
    user = next(user for user in users if user["email"] == request.json["email"])
    session["user_id"], session["email"] = user["id"], user["email"]
    return jsonify({"message": "signed in"})


# --- the tutorial's code, as published -----------------------------------------------------------------
# fmt: off

tenant_id = os.getenv("PASSKEY_TENANT_ID")
api_key = os.getenv("PASSKEY_API_KEY")

baseUrl = f"{os.getenv('PASSGATE_URL', 'http://localhost:8000')}/passkeys/{tenant_id}"  # the one change
headers = {
    "apikey": api_key,
    "Content-Type": "application/json",
}


@app.route('/passkey/start-registration', methods=["POST"])
def start_registration():
    print("registering passkey")
    if 'user_id' not in session:
        return jsonify({"error": "User must be logged in to register a passkey"}), 401

    user_id = session['user_id']
    user_email = session['email']

    payload = {
        "user_id": user_id,
        "username": user_email,
    }

    response = requests.post(f"{baseUrl}/registration/initialize", headers=headers, json=payload)
    creationOptions = response.json()
    return jsonify(creationOptions)


@app.route("/passkey/finalize-registration", methods=["POST"])
def finalize_registration():
    data = request.json

    response = requests.post(f"{baseUrl}/registration/finalize", headers=headers, json=data)
    data = response.json()

    return jsonify({"message": "Passkey registered successfully"}), 200


@app.route("/passkey/start-login", methods=["POST"])
def start_login():
    response = requests.post(f"{baseUrl}/login/initialize", headers=headers)
    login_options = response.json()

    return jsonify(login_options)


@app.route("/passkey/finalize-login", methods=["POST"])
def finalize_login():
    client_data = request.json

    response = requests.post(f"{baseUrl}/login/finalize", headers=headers, json=client_data)
    data = response.json()

    token = data.get('token')
    decoded_payload = jwt.decode(token, options={"verify_signature": False})

    user_id = decoded_payload.get('sub')
    user = next((user for user in users if user['id'] == user_id), None)
    if user:
        session["user_id"] = user["id"]
        session["email"] = user["email"]
        user_info = {"id": user["id"], "email": user["email"]}
        return jsonify({"message": "Login successful", "user": user_info}), 200
    else:
        return jsonify({"message": "Invalid credentials"}), 401
