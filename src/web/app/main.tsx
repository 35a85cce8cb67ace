/** @jsxImportSource preact */
// Placeholder: the real web client replaces this.
import { render } from "preact";

render(<p>parley</p>, document.getElementById("app")!);
