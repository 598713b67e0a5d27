/** The page shell every UI page shares: head, navigation, and a flash or error message. */

import { type Html, html, query } from "./html.ts";

/** What a page is made of. */
export interface PageParts {
  title: string;
  /** The namespace the navigation links keep. */
  namespace?: string;
  /** A success message (fixed text chosen by the server). */
  flash?: string;
  /** An error message, shown as text. */
  error?: string;
  body: Html;
}

/** Renders a whole page. */
export function page(p: PageParts): Html {
  const q = query({ namespace: p.namespace });
  const flash = p.flash ? html`<p class="flash" role="status">${p.flash}</p>` : "";
  const error = p.error ? html`<p class="error" role="alert" id="error">${p.error}</p>` : "";
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${p.title} · faasd-ts</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="/ui/style.css">
        <script src="/ui/app.js" defer></script>
      </head>
      <body>
        <header>
          <a class="brand" href="/ui/${q}">faasd-ts</a>
          <a href="/ui/${q}">Functions</a>
          <a href="/ui/deploy${q}">Deploy</a>
        </header>
        <main>
          ${flash} ${error} ${p.body}
        </main>
      </body>
    </html>
  `;
}
