// The C suite (reference §5.2), part 1: test_00 … test_14a, registered in the table's order.
import "./c/basics.js";
import "./c/pubsub.js";
import "./c/sessions.js";
