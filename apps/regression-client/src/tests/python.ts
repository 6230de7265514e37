// The Python suite (py-myqtt/test/myqtt-regression-client.py, reference §5.4), in running
// order: test_00_a ... test_11 in py/basics.ts, test_17c ... test_22 in py/advanced.ts.
import "./py/basics.js";
import "./py/advanced.js";
