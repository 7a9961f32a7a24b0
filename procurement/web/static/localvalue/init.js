// Local Value: start the vendored NHS.UK frontend components. Loaded as a module (deferred, and only by
// browsers that support modules), so it replaces the inline snippet in NHS.UK's page template, which a
// strict Content-Security-Policy would block. Keep the version in step with procurement/web/setup.py.
import { initAll } from "../nhsuk/nhsuk-frontend-10.6.1.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();
