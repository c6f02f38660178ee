// Starts the end-to-end tests' OpenID Provider for a bench (bench/lighthouse.sh): prints its
// issuer, then serves until killed. The callback it allows: the URL given as the argument.
import { startIdp } from '../end2end/tests/idp.mjs';

const idp = await startIdp([process.argv[2]]);
console.log(idp.issuer);
