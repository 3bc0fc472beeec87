// Drive the PhoneCallEvents SOAP service with JAX-WS, from the classes that
// plain `wsimport -extension -keep -d gen <url>?wsdl` generates.
//
// Run by TestE2EJavaClient (java_e2e_test.go), compiled with javac against
// those classes. Everything comes from the environment: CE_WSDL_URL,
// CE_TOKEN_URL, CE_CLIENT_ID and CE_CLIENT_SECRET (admin),
// CE_EXTENSION_SOAP11 and CE_EXTENSION_SOAP12, and optionally CE_RAW_DIR,
// where every response envelope is saved for schema validation.
//
// On the SOAP 1.1 port it authenticates with username and password, on the
// 1.2 port with an access token: both through the userCredentials
// parameter wsimport gives every method. On each port: add two Call
// Events, list them (all, and a page), edit one, set the other's status,
// delete by id and then all, and read three faults' serviceFault detail:
// an invalid extension (254), no credentials and wrong ones (100). Checks
// every observation itself, prints one JSON object on stdout and exits 1 on
// the first mismatch.

import callevents.phonecallevents._1.*;

import java.io.FileOutputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URL;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.namespace.QName;
import javax.xml.ws.Binding;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.Handler;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;

public class JavaClient {
    static final String CLIENT = "java";
    static final String HOOK = "https://hooks.example.com/" + CLIENT;
    static final Map<String, Object> report = new LinkedHashMap<>();
    static final ObjectFactory of = new ObjectFactory();
    static int saved; // responses seen, numbering the files in CE_RAW_DIR
    // Debian's SAAJ warns about its own factory lookup on every message;
    // held so the setting is not collected.
    static final Logger saajLog = Logger.getLogger("javax.xml.soap");

    static final class Mismatch extends RuntimeException {
        Mismatch(String msg) { super(msg); }
    }

    static void expect(boolean cond, String msg) {
        if (!cond) throw new Mismatch(msg);
    }

    public static void main(String[] args) {
        saajLog.setLevel(Level.SEVERE);
        report.put("client", CLIENT);
        int exit = 0;
        try {
            PhoneCallEvents service = new PhoneCallEvents(new URL(System.getenv("CE_WSDL_URL")));
            UserCredentials password = new UserCredentials();
            password.setUsername(System.getenv("CE_CLIENT_ID"));
            password.setPassword(System.getenv("CE_CLIENT_SECRET"));
            UserCredentials token = new UserCredentials();
            token.setAccessToken(accessToken());
            Map<String, Object> ports = new LinkedHashMap<>();
            report.put("ports", ports);
            ports.put("soap11", new Session(service.getPhoneCallEventsPort(), "soap11", password).run(System.getenv("CE_EXTENSION_SOAP11")));
            ports.put("soap12", new Session(service.getPhoneCallEventsPort12(), "soap12", token).run(System.getenv("CE_EXTENSION_SOAP12")));
        } catch (Throwable e) {
            report.put("error", e instanceof Mismatch ? e.getMessage() : e.toString());
            e.printStackTrace();
            exit = 1;
        }
        System.out.println(json(report));
        System.exit(exit);
    }

    // accessToken asks the token endpoint for one (client credentials grant).
    static String accessToken() throws Exception {
        String form = "grant_type=client_credentials&client_id=" + URLEncoder.encode(System.getenv("CE_CLIENT_ID"), StandardCharsets.UTF_8)
                + "&client_secret=" + URLEncoder.encode(System.getenv("CE_CLIENT_SECRET"), StandardCharsets.UTF_8);
        HttpRequest req = HttpRequest.newBuilder(URI.create(System.getenv("CE_TOKEN_URL")))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString(form)).build();
        HttpResponse<String> resp = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
        expect(resp.statusCode() == 200, "token endpoint: HTTP " + resp.statusCode() + " " + resp.body());
        Matcher m = Pattern.compile("\"access_token\"\\s*:\\s*\"([^\"]+)\"").matcher(resp.body());
        expect(m.find(), "no access_token in " + resp.body());
        return m.group(1);
    }

    // Session is one port of the service and the credentials it sends.
    static final class Session {
        final PhoneCallEventsPort port;
        final String tag;
        final UserCredentials creds;
        String op = ""; // the operation under way, naming the saved response

        Session(PhoneCallEventsPort port, String tag, UserCredentials creds) {
            this.port = port;
            this.tag = tag;
            this.creds = creds;
            Binding b = ((BindingProvider) port).getBinding();
            List<Handler> chain = b.getHandlerChain();
            chain.add(new SaveResponses());
            b.setHandlerChain(chain);
        }

        Map<String, Object> run(String ext) throws Exception {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("extension", ext);

            // Add: Dial-In by GET with the defaults; Hangup by POST with a note and a secret.
            op = "AddPhoneCallEvent";
            AddPhoneCallEvent a1 = new AddPhoneCallEvent();
            a1.setExtension(ext);
            a1.setType(0);
            a1.setUrl(HOOK + "/dial-in");
            AddPhoneCallEventResponse r1 = port.addPhoneCallEvent(a1, creds);
            AddPhoneCallEvent a2 = new AddPhoneCallEvent();
            a2.setExtension(ext);
            a2.setType(2);
            a2.setUrl(HOOK + "/hangup");
            a2.setMethod(of.createAddPhoneCallEventMethod(1));
            a2.setNote(of.createAddPhoneCallEventNote("hangup note <&> \u00e9\u2713"));
            a2.setSecret(of.createAddPhoneCallEventSecret("java-webhook-secret-0123456789"));
            AddPhoneCallEventResponse r2 = port.addPhoneCallEvent(a2, creds);
            expect("success".equals(r1.getResult()) && "success".equals(r2.getResult()), "Add results " + r1.getResult() + " " + r2.getResult());
            out.put("added", List.of(event(r1.getPhoneCallEvent()), event(r2.getPhoneCallEvent())));
            String id1 = r1.getPhoneCallEvent().getId(), id2 = r2.getPhoneCallEvent().getId();

            // List: all of them, then the second page of one.
            op = "GetPhoneCallEvents";
            GetPhoneCallEvents all = new GetPhoneCallEvents();
            all.setExtension(ext);
            out.put("listed", list(port.getPhoneCallEvents(all, creds)));
            GetPhoneCallEvents page = new GetPhoneCallEvents();
            page.setExtension(ext);
            page.setStartIndex(of.createGetPhoneCallEventsStartIndex(1));
            page.setCount(of.createGetPhoneCallEventsCount(1));
            out.put("page", list(port.getPhoneCallEvents(page, creds)));

            // Edit the Hangup one's url and note; disable the Dial-In one.
            op = "EditPhoneCallEvent";
            EditPhoneCallEvent edit = new EditPhoneCallEvent();
            edit.setExtension(ext);
            edit.setType(2);
            edit.setId(id2);
            edit.setUrl(of.createEditPhoneCallEventUrl(HOOK + "/hangup-v2"));
            edit.setNote(of.createEditPhoneCallEventNote("edited by java"));
            EditPhoneCallEventResponse er = port.editPhoneCallEvent(edit, creds);
            expect("success".equals(er.getResult()), "Edit result " + er.getResult());
            out.put("edited", event(er.getPhoneCallEvent()));
            op = "SetPhoneCallEventStatus";
            SetPhoneCallEventStatus set = new SetPhoneCallEventStatus();
            set.setExtension(ext);
            set.setType(0);
            set.setId(id1);
            set.setStatus(0);
            SetPhoneCallEventStatusResponse sr = port.setPhoneCallEventStatus(set, creds);
            expect("success".equals(sr.getResult()), "SetPhoneCallEventStatus result " + sr.getResult());
            out.put("statusSet", event(sr.getPhoneCallEvent()));

            // Delete the Hangup one by id, then all of the extension.
            op = "DelPhoneCallEvent";
            DelPhoneCallEvent byID = new DelPhoneCallEvent();
            byID.setExtension(ext);
            byID.setId(id2);
            DelPhoneCallEventResponse d1 = port.delPhoneCallEvent(byID, creds);
            DelPhoneCallEvent every = new DelPhoneCallEvent();
            every.setExtension(ext);
            DelPhoneCallEventResponse d2 = port.delPhoneCallEvent(every, creds);
            expect("success".equals(d1.getResult()) && "success".equals(d2.getResult()), "Del results");
            Map<String, Object> deleted = new LinkedHashMap<>();
            deleted.put("byId", d1.getDeletedId());
            deleted.put("all", d2.getDeletedId());
            out.put("deleted", deleted);
            op = "GetPhoneCallEvents";
            out.put("final", list(port.getPhoneCallEvents(all, creds)));

            // Faults: the code is read from the serviceFault detail.
            Map<String, Object> faults = new LinkedHashMap<>();
            AddPhoneCallEvent bad = new AddPhoneCallEvent();
            bad.setExtension("abc");
            bad.setType(0);
            bad.setUrl(HOOK + "/x");
            op = "AddPhoneCallEvent";
            faults.put("extensionInvalid", fault(() -> port.addPhoneCallEvent(bad, creds)));
            op = "GetPhoneCallEvents";
            faults.put("noCredentials", fault(() -> port.getPhoneCallEvents(all, null)));
            UserCredentials wrong = new UserCredentials();
            wrong.setAccessToken("not-a-valid-token");
            faults.put("badCredentials", fault(() -> port.getPhoneCallEvents(all, wrong)));
            out.put("faults", faults);
            return out;
        }

        interface Call { void run() throws ServiceFault_Exception; }

        Map<String, Object> fault(Call c) {
            try {
                c.run();
            } catch (ServiceFault_Exception e) {
                ServiceFault sf = e.getFaultInfo();
                expect(sf != null, op + ": fault without serviceFault detail");
                Map<String, Object> f = new LinkedHashMap<>();
                f.put("code", sf.getCode());
                f.put("message", sf.getMessage());
                f.put("faultstring", e.getMessage());
                return f;
            }
            throw new Mismatch(op + ": expected a SOAP fault, got a response");
        }

        // SaveResponses writes every response envelope, faults included, to
        // CE_RAW_DIR as <client>-<port>-<n>-<operation>.xml.
        final class SaveResponses implements SOAPHandler<SOAPMessageContext> {
            public Set<QName> getHeaders() { return Collections.emptySet(); }
            public boolean handleMessage(SOAPMessageContext ctx) { save(ctx); return true; }
            public boolean handleFault(SOAPMessageContext ctx) { save(ctx); return true; }
            public void close(MessageContext ctx) {}

            void save(SOAPMessageContext ctx) {
                if ((Boolean) ctx.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY)) return;
                saved++;
                String dir = System.getenv("CE_RAW_DIR");
                if (dir == null || dir.isEmpty()) return;
                String name = String.format("%s-%s-%02d-%s.xml", CLIENT, tag, saved, op);
                try (OutputStream w = new FileOutputStream(Path.of(dir, name).toFile())) {
                    ctx.getMessage().writeTo(w);
                } catch (Exception e) {
                    throw new RuntimeException("saving " + name, e);
                }
            }
        }
    }

    static Map<String, Object> event(PhoneCallEvent e) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", e.getId());
        m.put("extension", e.getExtension());
        m.put("type", e.getType());
        m.put("method", e.getMethod());
        m.put("url", e.getUrl());
        m.put("status", e.getStatus());
        m.put("note", e.getNote());
        m.put("hasSecret", e.isHasSecret());
        m.put("modified", e.getModified() == null ? null : e.getModified().toXMLFormat());
        return m;
    }

    static Map<String, Object> list(GetPhoneCallEventsResponse r) {
        List<Object> ids = new ArrayList<>();
        for (PhoneCallEvent e : r.getPhoneCallEvent()) ids.add(e.getId());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("total", r.getTotalResults());
        m.put("ids", ids);
        return m;
    }

    // json writes maps, lists, strings, numbers, booleans and null.
    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof Number || v instanceof Boolean) return v.toString();
        if (v instanceof Map) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (b.length() > 1) b.append(',');
                b.append(json(String.valueOf(e.getKey()))).append(':').append(json(e.getValue()));
            }
            return b.append('}').toString();
        }
        if (v instanceof List) {
            StringBuilder b = new StringBuilder("[");
            for (Object o : (List<?>) v) {
                if (b.length() > 1) b.append(',');
                b.append(json(o));
            }
            return b.append(']').toString();
        }
        StringBuilder b = new StringBuilder("\"");
        for (char c : v.toString().toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
}
