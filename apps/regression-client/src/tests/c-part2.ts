// The C suite from test_15 on (reference §5.2), in running order. The tests live in c2/, one
// file per theme; importing them registers them.
import "./c2/sessions.js"; // test_15, 15a, 15b, 16
import "./c2/retained.js"; // test_17, 17a, 17b, 17c, 17d
import "./c2/faults.js"; // test_17e, 17f
import "./c2/tls.js"; // test_18, 19, 19a
import "./c2/websocket.js"; // test_20, 20b
import "./c2/misc.js"; // test_21, 22, 23, 24
import "./c2/mosquitto.js"; // test_mosquitto_01, 02
