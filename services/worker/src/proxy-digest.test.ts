import { describe, expect, it } from "vitest";
import { digestAuthorization, parseDigestChallenge } from "./proxy-digest.ts";

describe("Digest login to the job's proxy", () => {
  it("answers RFC 2617's own example (qop=auth, MD5)", () => {
    const c = parseDigestChallenge('Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"');
    expect(c).toEqual({ realm: "testrealm@host.com", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", algorithm: "MD5", qop: "auth", opaque: "5ccc069c403ebaf9f0171e9517f40e41" });
    const header = digestAuthorization(c as NonNullable<typeof c>, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b");
    expect(header).toContain('response="6629fae49393a05397450978507c4ef1"');
    expect(header).toContain("nc=00000001");
    expect(header).toContain('opaque="5ccc069c403ebaf9f0171e9517f40e41"');
  });

  it("answers RFC 7616's SHA-256 example", () => {
    const c = parseDigestChallenge('Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"');
    const header = digestAuthorization(c as NonNullable<typeof c>, "Mufasa", "Circle of Life", "GET", "/dir/index.html", 1, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ");
    expect(header).toContain('response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"');
    expect(header).toContain("algorithm=SHA-256");
  });

  it("finds Digest among several challenges, and ignores what it cannot answer", () => {
    expect(parseDigestChallenge(['Basic realm="a"', 'Digest realm="b", nonce="n"'])).toEqual({ realm: "b", nonce: "n", algorithm: "MD5" });
    expect(parseDigestChallenge('Basic realm="a"')).toBeUndefined();
    expect(parseDigestChallenge('Digest realm="b", nonce="n", qop="auth-int"')).toBeUndefined();
    expect(parseDigestChallenge('Digest realm="b", nonce="n", algorithm=SHA-512-256')).toBeUndefined();
    expect(parseDigestChallenge('Digest nonce="n"')).toBeUndefined();
    expect(parseDigestChallenge(undefined)).toBeUndefined();
  });

  it("reads challenges Node joined into one value without mixing their parameters, and notes a stale nonce", () => {
    expect(parseDigestChallenge('Digest realm="a", nonce="x", algorithm=SHA-512-256, Digest realm="b", nonce="y", qop="auth", Basic realm="c"'))
      .toEqual({ realm: "b", nonce: "y", algorithm: "MD5", qop: "auth" });
    expect(parseDigestChallenge('Digest realm="a", nonce="new", stale=true')).toEqual({ realm: "a", nonce: "new", algorithm: "MD5", stale: true });
    expect(parseDigestChallenge(`Digest realm="a", nonce="n", opaque="${"x".repeat(5000)}"`)).toBeUndefined();
  });

  it("never puts a name with control or non-ASCII characters raw into the header", () => {
    const c = { realm: "r", nonce: "n", algorithm: "MD5" };
    const header = digestAuthorization(c, "us\r\nX-Injected: 1", "pw", "CONNECT", "a:443", 1);
    expect(header).not.toMatch(/[\r\n]/);
    expect(header).toContain("username*=UTF-8''us%0D%0AX-Injected%3A%201");
    expect(digestAuthorization(c, "用户", "pw", "GET", "/", 1)).toContain("username*=UTF-8''%E7%94%A8%E6%88%B7");
  });
});
