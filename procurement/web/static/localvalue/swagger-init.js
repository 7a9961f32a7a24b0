// Starts Swagger UI on /schema/swagger. A file, not an inline script, so the page needs no 'unsafe-inline'.
// validatorUrl: null stops Swagger UI sending the document to validator.swagger.io (nothing leaves the server).
(function () {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
  });
})();
