/**
 * @module showcase/reference
 * The reference names the showcase's controller computes lint, blast radius and diffs against: the
 * shared corpus's top-10k list when it sits next to the repository (`../shared/corpus/reference/
 * top10k.txt`), else a small list bundled here (a hand-picked set of widely used sites, most popular
 * first), so `npm start` works on a fresh clone. Both hold names that merely contain `t.co`.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNamesText, readNamesFile, type Reference } from '../policy/reference.js';

/** Widely used sites (not a ranking: an order that puts the well-known ones first). */
export const BUNDLED_NAMES: readonly string[] = `
google.com youtube.com facebook.com microsoft.com apple.com amazon.com instagram.com wikipedia.org
twitter.com x.com linkedin.com reddit.com netflix.com yahoo.com bing.com live.com office.com
whatsapp.com tiktok.com github.com pinterest.com yandex.ru vk.com mail.ru cloudflare.com akamai.net
baidu.com zoom.us chatgpt.com openai.com wordpress.org adobe.com ebay.com twitch.tv spotify.com
dropbox.com paypal.com imdb.com stackoverflow.com telegram.org t.me t.co twimg.com bbc.co.uk
cnn.com nytimes.com theguardian.com booking.com aliexpress.com ozon.ru wildberries.ru avito.ru
gosuslugi.ru sberbank.ru rt.com ria.ru habr.com kinopoisk.ru dzen.ru ok.ru rambler.ru skype.com
msn.com outlook.com windowsupdate.com azure.com xbox.com steampowered.com epicgames.com discord.com
signal.org mozilla.org debian.org ubuntu.com python.org npmjs.com docker.com gitlab.com medium.com
quora.com tumblr.com flickr.com vimeo.com soundcloud.com archive.org duckduckgo.com protonmail.com
icloud.com samsung.com huawei.com xiaomi.com nvidia.com intel.com amd.com oracle.com ibm.com
salesforce.com shopify.com etsy.com walmart.com craigslist.org weather.com accuweather.com espn.com
fifa.com nasa.gov who.int un.org europa.eu example.org example.com
`
  .split(/\s+/)
  .filter(Boolean);

/** Where the shared corpus's top-10k list would be, next to the repository. */
export function sharedTop10k(): string {
  // the repository root: the first folder above this module with a package.json (src/ or dist/src/)
  let root = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4 && !existsSync(join(root, 'package.json')); i++) root = resolve(root, '..');
  return join(root, '..', 'shared', 'corpus', 'reference', 'top10k.txt');
}

/** `file` when given; else the shared top-10k list when present; else the bundled names. */
export async function showcaseReference(file?: string): Promise<Reference> {
  if (file) return readNamesFile(file);
  const shared = sharedTop10k();
  if (existsSync(shared)) return readNamesFile(shared);
  return parseNamesText(BUNDLED_NAMES.join('\n'), 'bundled showcase list (src/showcase/reference.ts)');
}
