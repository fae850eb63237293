// Starts Swagger UI on /docs (kept out of the page so the CSP needs no inline script).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
