// Registers the tests in running order: the C suite (§5.2), then the Python suite (§5.4).
import "./c-part1.js";
import "./c-part2.js";
import "./python.js";
